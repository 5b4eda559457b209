"""In-process cost of `Authenticator.authenticate()`: cache hit, miss, bad checksum, and the
memory a worker needs for 100,000 cached principals.

    .venv/bin/python bench/inprocess_auth.py [--postgres postgresql://postgres@127.0.0.1/test]

The baseline, measured in the same run, is the floor the hit path cannot beat: one SHA-256 of
a key plus one dict lookup. Ratios are against it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import hashlib
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from keyport.bootstrap import Container, build_container
from keyport.config import Settings
from keyport.db.engine import async_url
from keyport.domain.audit import Actor
from keyport.domain.errors import InvalidApiKey
from keyport.domain.keys import KeyStatus, generate_key
from keyport.domain.principal import Principal
from keyport.domain.users import NewUser


def median_us(samples: list[float]) -> float:
    return statistics.median(samples) * 1e6


def p99_us(samples: list[float]) -> float:
    return sorted(samples)[int(len(samples) * 0.99) - 1] * 1e6


def floor_cost(key: str, rounds: int) -> list[float]:
    table = {hashlib.sha256(key.encode()).hexdigest(): object()}
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        table.get(hashlib.sha256(key.encode()).hexdigest())
        samples.append(time.perf_counter() - started)
    return samples


async def timed(
    work: Callable[[], Awaitable[object]], rounds: int, before: Callable[[], None] | None = None
) -> list[float]:
    samples = []
    for _ in range(rounds):
        if before is not None:
            before()
        started = time.perf_counter()
        with contextlib.suppress(InvalidApiKey):
            await work()
        samples.append(time.perf_counter() - started)
    return samples


async def prepared(url: str) -> tuple[Container, str]:
    container = build_container(
        Settings(database_url=url, password_time_cost=1, password_memory_cost=64)
    )
    await container.migrate()
    company = await container.companies.create_company(
        "Bench",
        NewUser(f"owner-{uuid.uuid4().hex[:8]}@bench.test", "B", "O", "UTC"),
        Actor.cli(),
    )
    issued = await container.keys.issue_key(
        company.company.id, name=None, days=30, actor=Actor.cli()
    )
    return container, f"Bearer {issued.key}"


async def measure_backend(name: str, url: str, rounds: int) -> list[tuple[str, float, float]]:
    container, header = await prepared(url)
    auth = container.authenticator
    try:
        await auth.authenticate(header)
        rows = []
        hit = await timed(lambda: auth.authenticate(header), rounds * 10)
        rows.append((f"{name}: cache hit", median_us(hit), p99_us(hit)))
        miss = await timed(lambda: auth.authenticate(header), rounds, container.caches.clear)
        rows.append((f"{name}: cache miss (database read)", median_us(miss), p99_us(miss)))
        unknown = f"Bearer {generate_key(uuid.uuid4())}"
        first_unknown = await timed(lambda: auth.authenticate(unknown), 1)
        repeat_unknown = await timed(lambda: auth.authenticate(unknown), rounds * 10)
        rows.append(
            (
                f"{name}: unknown key, first (database read)",
                median_us(first_unknown),
                p99_us(first_unknown),
            )
        )
        rows.append(
            (
                f"{name}: unknown key, repeated (negative cache)",
                median_us(repeat_unknown),
                p99_us(repeat_unknown),
            )
        )
        bad = header[:-1] + ("A" if header[-1] != "A" else "B")
        bad_checksum = await timed(lambda: auth.authenticate(bad), rounds * 10)
        rows.append(
            (f"{name}: bad checksum (no I/O)", median_us(bad_checksum), p99_us(bad_checksum))
        )
        return rows
    finally:
        await container.close()


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def memory_for_principals(count: int) -> tuple[float, float]:
    from keyport.services.access.cache import Caches

    caches = Caches()
    gc.collect()
    before = rss_mib()
    generation = caches.principals.generation
    for _ in range(count):
        key_id = str(uuid.uuid4())
        principal = Principal(
            key_id, str(uuid.uuid4()), str(uuid.uuid4()), KeyStatus.ACTIVE, time.time() + 86400
        )
        caches.principals.store(hashlib.sha256(os.urandom(32)).hexdigest(), principal, generation)
    gc.collect()
    return before, rss_mib()


async def fresh_postgres_database(base: str) -> str:
    name = f"keyport_bench_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(async_url(base), isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    return make_url(async_url(base)).set(database=name).render_as_string(hide_password=False)


async def drop_postgres_database(base: str, url: str) -> None:
    admin = create_async_engine(async_url(base), isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(
            text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
        )
    await admin.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--postgres",
        default=os.environ.get("KEYPORT_TEST_POSTGRES_URL"),
        help="base URL of a PostgreSQL server (a scratch database is made)",
    )
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()

    floor = floor_cost(generate_key(uuid.uuid4()), args.rounds * 10)
    floor_us = median_us(floor)
    rows = [("baseline: sha256 + dict lookup", floor_us, p99_us(floor))]
    with tempfile.TemporaryDirectory() as folder:
        rows += await measure_backend("sqlite", f"sqlite:///{folder}/bench.db", args.rounds)
    if args.postgres:
        url = await fresh_postgres_database(args.postgres)
        try:
            rows += await measure_backend("postgres", url, args.rounds)
        finally:
            await drop_postgres_database(args.postgres, url)

    print(f"{'scenario':48} {'median µs':>10} {'p99 µs':>10} {'x baseline':>11}")
    for name, median, p99 in rows:
        print(f"{name:48} {median:10.2f} {p99:10.2f} {median / floor_us:11.1f}")
    before, after = memory_for_principals(100_000)
    print(
        f"\n100,000 cached principals: RSS {before:.0f} MiB → {after:.0f} MiB "
        f"(+{after - before:.0f} MiB; whole process {after:.0f} MiB)"
    )


if __name__ == "__main__":
    asyncio.run(main())
