"""What the lifecycle's background loops cost a serving process when there is nothing to do.

    .venv/bin/python bench/lifecycle_loops.py [--postgres postgresql://postgres@127.0.0.1/test]

Per tick (every KEYPORT_WEBHOOK_POLL_INTERVAL, 1 s): the lease read, and for the holder the
query for due deliveries. The expiry check runs every 30 s. None of it is on the request path;
this is the share of a core the loops take from it.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from keyport.bootstrap import build_container
from keyport.config import Settings
from keyport.domain.audit import Actor
from keyport.domain.users import NewUser

ROUNDS = 300


async def measure(url: str) -> None:
    container = build_container(Settings(database_url=url))
    await container.migrate()
    try:
        created = await container.companies.create_company(
            "Bench", NewUser("o@bench.test", "O", "Wner", "UTC"), Actor.cli()
        )
        for n in range(200):
            await container.keys.issue_key(
                created.company.id, name=f"k{n}", days=30, actor=Actor.cli()
            )
        delivery, expiry = container.background_loops
        for label, loop in (("webhook tick (holder)", delivery), ("expiry check", expiry)):
            await loop.tick()  # takes the lease
            cpu, wall = [], []
            for _ in range(ROUNDS if loop is delivery else ROUNDS // 10):
                c0, w0 = time.process_time(), time.perf_counter()
                await loop.tick()
                cpu.append(time.process_time() - c0)
                wall.append(time.perf_counter() - w0)
            print(
                f"{label:28} cpu median {statistics.median(cpu) * 1e3:6.2f} ms"
                f"  wall median {statistics.median(wall) * 1e3:6.2f} ms"
            )
    finally:
        await container.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        print("sqlite:")
        asyncio.run(measure(f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"))
    if args.postgres:
        print("postgres:")
        asyncio.run(measure(args.postgres))


if __name__ == "__main__":
    main()
