"""CPU of a batched lease ask (redis/leases.py) with redis-py's pure-Python reply parser and
with hiredis (a dependency since 2026-12-01), alternating, same run.

    .venv/bin/python bench/redis_parser.py [--redis redis://127.0.0.1:6379/0] [--calls 3000]

Each call asks for leases of four keys at once (the batch a busy process sends), on keys of
this bench's own prefix, which it deletes at the end. Prints this process's CPU per call
(user + system, from getrusage) for each parser and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
from typing import Any

import uvloop
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.connection import _AsyncHiredisParser, _AsyncRESP2Parser

from keyport.domain.rate_limits import Policy
from keyport.redis.leases import RedisLeases

PREFIX = "keyport:bench:parser:"
KEYS_PER_CALL = 4
POLICY = Policy(rate=60_000.0, burst=1_000_000)  # far from the limit: every ask is granted


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def cpu_per_call(url: str, parser: Any, calls: int) -> float:
    """Microseconds of this process's CPU per script call asking for KEYS_PER_CALL leases."""
    redis = Redis(connection_pool=ConnectionPool.from_url(url, parser_class=parser))
    leases = RedisLeases(redis, prefix=PREFIX)
    try:
        for _ in range(200):  # warm up: the script is loaded, the connection open
            await leases.lease("warm", POLICY, 10, 0)
        before = cpu_seconds()
        for _ in range(calls):
            await asyncio.gather(
                *(leases.lease(f"k{n}", POLICY, 10, 1) for n in range(KEYS_PER_CALL))
            )
        return (cpu_seconds() - before) / calls * 1e6
    finally:
        await redis.delete(PREFIX + "warm", *(f"{PREFIX}k{n}" for n in range(KEYS_PER_CALL)))
        await redis.aclose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    ratios = []
    for round_number in range(1, args.rounds + 1):
        python = await cpu_per_call(args.redis, _AsyncRESP2Parser, args.calls)
        hiredis = await cpu_per_call(args.redis, _AsyncHiredisParser, args.calls)
        ratios.append(hiredis / python)
        print(
            f"round {round_number}: pure Python {python:.1f} µs, hiredis {hiredis:.1f} µs "
            f"CPU a call of {KEYS_PER_CALL} asks (hiredis / Python {hiredis / python:.2f})",
            flush=True,
        )
    print(f"median hiredis / Python: {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    uvloop.run(main())
