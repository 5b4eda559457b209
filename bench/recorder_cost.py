"""CPU of usage recording a request, in one process: `UsageRecorder.observe` for a flush's
requests and the drain that turns them into rows, with one key or many keys taking turns.

Why: with 10,000 keys in use each key sees a few requests a flush, so every request becomes a
ring entry and a tally of its own, cold in the CPU's caches (bench/README.md, session 13);
with one key the ring is full and most requests are never encoded. Served, that difference is
lost in the machine's drift; here it is a few per cent between runs.

    .venv/bin/python bench/recorder_cost.py --keys 10000
    .venv/bin/python bench/recorder_cost.py --keys 1
    .venv/bin/python bench/recorder_cost.py --keys 10000 --src /tmp/old/src   # another checkout

Each round observes --requests requests (a 5 s flush at ~14,000 req/s), the keys taking turns,
then drains; prints the minimum and the median over the rounds of the CPU a request.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=70_000, help="requests a flush")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--src", type=Path, default=None, help="another checkout's src/")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    if args.src is not None:
        sys.path.insert(0, str(args.src.resolve()))
    from keyport.services.observability.request_record import RequestRecord
    from keyport.services.observability.usage_recorder import UsageRecorder

    start = 1_800_000_000.0  # a whole minute
    clock = [start]
    recorder = UsageRecorder(lambda: clock[0])
    keys = [f"{n:08d}-0000-4000-8000-000000000000" for n in range(args.keys)]
    count = args.requests
    records = [
        RequestRecord(
            f"{n:024x}",
            "GET",
            "/v4/user/me",
            "/v4/user/me",
            200,
            0.0001,
            "127.0.0.1",
            "wrk/4.2.0",
            keys[n % args.keys],
            "00000000-0000-4000-8000-000000000001",
            None,
            start + n * 5 / count,
            0.00001,
        )
        for n in range(count)
    ]
    costs = []
    for _ in range(args.rounds):
        began = time.process_time()
        for record in records:
            recorder.observe(record)
        recorder.drain()
        costs.append((time.process_time() - began) / count * 1e6)
        clock[0] += 5
    print(
        f"{args.keys:,} keys, {count:,} requests a flush: observe + drain "
        f"min {min(costs):.2f} µs, median {statistics.median(costs):.2f} µs a request"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
