"""What writing usage costs PostgreSQL and Keyport when many keys each see a few requests per
flush (the 10,000-key case of many_keys.py), without HTTP: A/B of the two changes of
2026-12-01, alternating in one run on one database.

    .venv/bin/python bench/usage_writes.py [--keys 2000] [--per-key 4] [--flushes 5] [--rounds 3]

Every key gets `--per-key` requests per flush, each from the same client (one address, one user
agent), so a flush holds per key: one minute count, `--per-key` ring rows and its client.
Four variants, each `--flushes` flushes in a row after one unmeasured flush (that one trims
every key's full ring; the measured ones trim none, as in most flushes):

- `fk, every flush`: the usage tables with their foreign keys to api_keys (migration 0007) and
  a new recorder per flush (each flush writes every key's client, as before);
- `no fk, every flush`: migration 0008 (no foreign keys), clients still written every flush;
- `fk, once a minute` / `no fk, once a minute`: one recorder for all flushes, so a client
  written in the last minute waits (usage_recorder.SIGHTING_EVERY).

Printed per variant: PostgreSQL's CPU (every `postgres` process, from /proc) and this process's
CPU, both per request recorded, and the wall time of a flush. The database is a fresh one,
dropped at the end; its keys are made through the service and their rings filled first.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from alembic import command
from sqlalchemy import Connection, select

from _cpu import CLOCK_TICKS, command_cpu_ticks, ticks_since
from hotpath_compare import drop_postgres, fresh_postgres, set_up
from keyport.db.engine import create_engine
from keyport.db.migrate import _config
from keyport.db.tables import api_keys
from keyport.db.usage_store import SqlUsageStore
from keyport.services.observability.request_record import RequestRecord
from keyport.services.observability.usage_recorder import UsageBatch, UsageRecorder
from many_keys import fill_rings, make_keys

VARIANTS = (
    ("fk, every flush", "0007", False),
    ("no fk, every flush", "head", False),
    ("fk, once a minute", "0007", True),
    ("no fk, once a minute", "head", True),
)
FLUSH_SECONDS = 5.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=2000)
    parser.add_argument("--per-key", type=int, default=4, help="requests per key and flush")
    parser.add_argument("--flushes", type=int, default=5, help="measured flushes per variant")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    return parser.parse_args()


class Clock:
    """The recorder's clock: one flush interval further at every flush."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def record(key_id: str, at: float, n: int) -> RequestRecord:
    return RequestRecord(
        request_id=f"{n:032x}",
        method="GET",
        path="/v4/user/me",
        route="/v4/user/me",
        status=200,
        latency=0.0012,
        client_ip="203.0.113.7",
        user_agent="billing-service/2.3",
        key_id=key_id,
        acting_user_id=None,
        auth_failure=None,
        started_at=at,
    )


def migrate(connection: Connection, revision: str) -> None:
    if revision == "head":
        command.upgrade(_config(connection), revision)
    else:
        command.downgrade(_config(connection), revision)


async def run_variant(
    url: str, key_ids: list[str], args: argparse.Namespace, revision: str, held: bool
) -> tuple[float, float, float]:
    """(PostgreSQL CPU µs, own CPU µs) per request, and the median wall ms of a flush."""
    engine = create_engine(url)
    async with engine.connect() as connection, connection.begin():
        await connection.run_sync(migrate, revision)
    store = SqlUsageStore(engine, url)
    clock = Clock()
    recorder = UsageRecorder(clock)
    pg_ticks = own_seconds = 0.0
    walls = []
    try:
        for flush in range(args.flushes + 1):
            if not held:
                recorder = UsageRecorder(clock)  # no memory of clients already written
            for n in range(args.per_key):
                at = clock.now + n
                for key_id in key_ids:
                    recorder.observe(record(key_id, at, n))
            clock.now += FLUSH_SECONDS
            pg_before = command_cpu_ticks("postgres")
            own_before, wall_before = time.process_time(), time.perf_counter()
            batch = UsageBatch()
            for _ in recorder.drain_in_steps(batch):
                await asyncio.sleep(0)
            await store.write(batch)
            if flush == 0:
                continue  # the first write trims every key's full ring: not a usual flush
            walls.append((time.perf_counter() - wall_before) * 1000)
            own_seconds += time.process_time() - own_before
            pg_ticks += ticks_since(pg_before, command_cpu_ticks("postgres"))
    finally:
        await store.close()
        await engine.dispose()
    requests = args.flushes * args.per_key * len(key_ids)
    pg_us = pg_ticks / CLOCK_TICKS / requests * 1e6
    return pg_us, own_seconds / requests * 1e6, statistics.median(walls)


async def key_ids_of(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return list((await connection.execute(select(api_keys.c.id))).scalars())
    finally:
        await engine.dispose()


def main() -> None:
    args = parse_args()
    url = fresh_postgres(args.postgres)
    try:
        set_up(url, Path(tempfile.mkdtemp(prefix="keyport-usage-writes-")))
        asyncio.run(make_keys(url, args.keys - 1))
        fill_rings(url)
        key_ids = asyncio.run(key_ids_of(url))
        print(f"{len(key_ids):,} keys, {args.per_key} requests each a flush, full rings")
        results: dict[str, list[tuple[float, float, float]]] = {name: [] for name, *_ in VARIANTS}
        for round_number in range(1, args.rounds + 1):
            print(f"Round {round_number} of {args.rounds}")
            order = VARIANTS if round_number % 2 else tuple(reversed(VARIANTS))
            for name, revision, held in order:
                measured = asyncio.run(run_variant(url, key_ids, args, revision, held))
                results[name].append(measured)
                pg_us, own_us, wall_ms = measured
                print(
                    f"  {name:22} PostgreSQL {pg_us:5.1f} µs, Keyport {own_us:5.1f} µs CPU a "
                    f"request; a flush {wall_ms:6.1f} ms",
                    flush=True,
                )
        print("medians:")
        for name, measured in results.items():
            pg_us = statistics.median(m[0] for m in measured)
            own_us = statistics.median(m[1] for m in measured)
            print(f"  {name:22} PostgreSQL {pg_us:5.1f} µs, Keyport {own_us:5.1f} µs")
    finally:
        drop_postgres(args.postgres, url)


if __name__ == "__main__":
    main()
