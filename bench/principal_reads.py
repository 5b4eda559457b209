"""CPU of reading cached keys again from PostgreSQL, per principal, by the size of the batch.

Why: with 10,000 keys in use and the 10 s cache TTL about 1,000 principals a second are read
again ahead of their expiry (services/access/cache.py). Named one by one as their entries come
due, they were read in small batches (whatever came due while the previous read was on its
way, ~20 on average: bench/README.md, session 13); now the keys named within
authentication.REFRESH_GATHER are read together. This shows what a batch's size does to the
serving process's CPU a principal (asyncpg, the row turned into a Principal).

    .venv/bin/python bench/principal_reads.py --keys 4000

Needs PostgreSQL at --postgres (a fresh database is made and dropped).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

BATCHES = (1, 4, 16, 64, 250, 1000)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=4000, help="principals read per batch size")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    return parser.parse_args()


async def measure(database: str, keys: list[str], rounds: int) -> None:
    from keyport.db.hot_reads import PostgresHotReader

    digests = [hashlib.sha256(key.encode()).hexdigest() for key in keys]
    reader = PostgresHotReader(database)
    try:
        await reader.principals_by_digests(digests[:10])  # the pool and its statements
        print(
            f"the serving process's CPU a principal read ({len(digests):,} a round, best of "
            f"{rounds} rounds):"
        )
        for size in BATCHES:
            best = float("inf")
            for _ in range(rounds):
                started = time.process_time()
                for start in range(0, len(digests), size):
                    batch = digests[start : start + size]
                    if size == 1:
                        await reader.principal_by_digest(batch[0])
                    else:
                        found = await reader.principals_by_digests(batch)
                        assert len(found) == len(batch)
                best = min(best, (time.process_time() - started) / len(digests))
            print(f"  batches of {size:5,}: {best * 1e6:6.1f} µs")
    finally:
        await reader.close()


def main() -> None:
    args = parse_args()
    from hotpath_compare import drop_postgres, fresh_postgres
    from many_keys import company_with_keys

    database = fresh_postgres(args.postgres)
    try:
        asyncio.run(measure(database, company_with_keys(database, args.keys), args.rounds))
    finally:
        drop_postgres(args.postgres, database)


if __name__ == "__main__":
    main()
