"""CPU of the express lane alone (`ApiGate.answer_now`) a request: one key sent again and
again, one key with every request numbered by a header of its own, and many keys cycling on
one connection (bench/many_keys.py's scenarios without HTTP, the server, or wrk).

Why: served, the machine's speed moves more between rounds than a few µs of the gate's work
(bench/README.md, session 11). Here the gate's decisions, its observers (usage, metrics, the
request log's keeping) and the caches run as served, on PostgreSQL and Redis, in one process;
each scenario takes turns in rounds of `--keys` requests, and the minimum over the rounds is
the least disturbed figure. Background work (usage flush, the log's ticks) runs between rounds.

    .venv/bin/python bench/express_lane_cost.py --keys 2000 --rounds 15
    .venv/bin/python bench/express_lane_cost.py --src /tmp/old/src   # another checkout's code

Needs PostgreSQL at --postgres (a fresh database is made and dropped) and Redis at --redis.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--src", type=Path, default=None, help="another checkout's src/")
    parser.add_argument("--measure", nargs=2, help=argparse.SUPPRESS)  # database url, keys file
    return parser.parse_args()


def scope_of(key: str, extra: tuple[tuple[bytes, bytes], ...] = ()) -> dict[str, Any]:
    """What uvicorn's protocol builds for `GET /v4/user/me` with this key."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "scheme": "http",
        "root_path": "",
        "headers": [(b"host", b"bench"), (b"authorization", f"Bearer {key}".encode()), *extra],
        "state": {},
        "method": "GET",
        "path": "/v4/user/me",
        "raw_path": b"/v4/user/me",
        "query_string": b"",
    }


async def call(app: Any, scope: dict[str, Any]) -> None:
    """One request the usual way (ASGI), its answer dropped: fills the caches."""

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        pass

    await app(scope, receive, send)


async def measure(
    database: str, keys: list[str], rounds: int, redis: str
) -> dict[str, list[float]]:
    from keyport.web.gate import ExpressMemo
    from protocol_cost import LIMITS, keyport_app

    app, stop = await keyport_app(
        {"KEYPORT_DATABASE_URL": database, "KEYPORT_REDIS_URL": redis, **LIMITS}
    )
    scenarios = {
        "one key": [scope_of(keys[0]) for _ in keys],
        "one key, numbered": [
            scope_of(keys[0], ((b"x-bench-request", b"%d" % n),)) for n in range(len(keys))
        ],
        f"{len(keys):,} keys cycling": [scope_of(key) for key in keys],
    }
    costs: dict[str, list[float]] = {name: [] for name in scenarios}
    handed_on = dict.fromkeys(scenarios, 0)
    for key in keys:
        await call(app, scope_of(key))
    for _ in range(rounds):
        for name, scopes in scenarios.items():
            memo = ExpressMemo()  # one connection's
            spent = 0.0
            for scope in scopes:
                scope.pop("keyport", None)
                started = time.process_time()
                answer = app.answer_now(scope, memo)
                spent += time.process_time() - started
                if answer is None:  # a lease to renew: the usual path, not counted
                    handed_on[name] += 1
                    scope.pop("keyport", None)
                    await call(app, scope)
            costs[name].append(spent / len(scopes))
            await asyncio.sleep(0.05)  # background work runs between rounds
    await stop()
    print(f"handed on to the usual path (not counted): {handed_on}", file=sys.stderr)
    return costs


def measure_in_child(args: argparse.Namespace, database: str, keys: list[str]) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".keys") as file:
        file.write("\n".join(keys))
        file.flush()
        env = {**os.environ}
        if args.src is not None:
            env["PYTHONPATH"] = str(args.src)
        argv = [sys.executable, __file__, "--rounds", str(args.rounds), "--redis", args.redis]
        subprocess.run([*argv, "--measure", database, file.name], env=env, check=True)


def main() -> None:
    args = parse_args()
    if args.measure:
        from protocol_cost import stdout_discarded

        database, keys_file = args.measure
        keys = Path(keys_file).read_text().split("\n")
        with stdout_discarded():
            costs = uvloop.run(measure(database, keys, args.rounds, args.redis))
        print(f"µs of CPU in answer_now a request ({args.rounds} rounds of {len(keys):,}):")
        for name, values in costs.items():
            low, middle = min(values) * 1e6, statistics.median(values) * 1e6
            print(f"  {name:22} min {low:6.2f}   median {middle:6.2f}")
        return
    from hotpath_compare import drop_postgres, fresh_postgres
    from many_keys import company_with_keys

    database = fresh_postgres(args.postgres)
    try:
        measure_in_child(args, database, company_with_keys(database, args.keys))
    finally:
        drop_postgres(args.postgres, database)


if __name__ == "__main__":
    main()
