"""Keyport's benchmark suite: one entry point, named scenarios, each printing its ratios.

    .venv/bin/python bench/run.py --list                 # the scenarios and what they compare
    .venv/bin/python bench/run.py hotpath unauthorized   # measure these (minutes each)
    .venv/bin/python bench/run.py --smoke all            # every scenario, seconds each

Every scenario measures what it compares in the same run, in alternating rounds, and prints
the ratios (a figure over its reference), since the absolute figures of a shared machine move
2-3x between runs. Each runs one of the scripts beside this file, printed before it runs, so
that it can be run again by hand with other options. `--smoke` makes every run a second or
two: it proves the scenario works, its figures mean nothing.

Needs wrk; the PostgreSQL scenarios need PostgreSQL at --postgres (each makes and drops a
scratch database), the Redis ones Redis at --redis (only keys of their own), the gateway
nginx and caddy. Run from anywhere; the scripts run from the repository root.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
REDIS = "redis://127.0.0.1:6379/0"


@dataclass(frozen=True)
class Scenario:
    name: str
    compares: str
    script: list[str]  # after the interpreter: a path, or -m and a module
    full: list[str]  # the options of a measurement
    smoke: list[str]  # the options of a smoke run
    services: tuple[str, ...] = ()  # "postgres", "redis": the options the script takes


def _hotpath(name: str, compares: str, configs: str, services: tuple[str, ...] = ()) -> Scenario:
    return Scenario(
        name,
        compares,
        ["bench/hotpath_compare.py", "--configs", configs],
        ["--rounds", "3", "--duration", "5"],
        ["--rounds", "1", "--duration", "1", "--warmup", "1"],
        services,
    )


SCENARIOS = [
    _hotpath(
        "hotpath",
        "GET /v4/user/me (SQLite, defaults) against a raw ASGI hello and a Starlette hello",
        "raw-uvicorn,starlette,sqlite",
    ),
    _hotpath(
        "unauthorized",
        "the 401 path (a key whose checksum fails; the failed-authentication limit raised so "
        "that 401s, not 429s, are measured) against GET /v4/user/me",
        "sqlite,sqlite-401",
    ),
    _hotpath(
        "pat",
        "GET /v4/user/me with a personal access token (no user header) against the same with a "
        "company key (SQLite)",
        "sqlite,sqlite-pat",
    ),
    _hotpath(
        "authorize",
        "GET /v1/authorize against GET /v4/user/me (PostgreSQL)",
        "pg,pg-authorize",
        ("postgres",),
    ),
    _hotpath(
        "redis",
        "PostgreSQL + Redis against PostgreSQL alone, for /v4/user/me and /v1/authorize",
        "pg,pg-redis,pg-authorize,pg-redis-authorize",
        ("postgres", "redis"),
    ),
    _hotpath(
        "observers",
        "defaults against the JSON request log off and usage recording off (SQLite)",
        "sqlite,sqlite-nolog,sqlite-nousage",
    ),
    _hotpath(
        "workers",
        "2 workers against 1 (PostgreSQL + Redis); bounded by the machine's 2 cores and wrk",
        "pg-redis,pg-redis-2w",
        ("postgres", "redis"),
    ),
    Scenario(
        "gateway",
        "nginx and Caddy in front of a Starlette hello, with Keyport's check against without; "
        "/v1/authorize against /v4/user/me; the latency the check adds at one connection",
        ["bench/gateway_bench.py"],
        ["--duration", "10", "--rounds", "2"],
        ["--duration", "1", "--rounds", "1"],
    ),
    Scenario(
        "many-keys",
        "10,000 keys cycling against one key (PostgreSQL + Redis, every key's ring of recent "
        "requests full)",
        ["bench/many_keys.py"],
        ["--keys", "10000", "--rounds", "2", "--duration", "5", "--full-rings"],
        ["--keys", "300", "--rounds", "1", "--segments", "1", "--duration", "1", "--warmup", "1"],
        ("postgres", "redis"),
    ),
    Scenario(
        "million-keys",
        "1,000,000 keys in PostgreSQL: verifying keys none of which is cached against a cache "
        "hit; the dashboard's first page of a company with 10,000 keys",
        ["-m", "bench.scale_keys"],
        [],
        ["--keys", "20000", "--samples", "200"],
        ("postgres",),
    ),
    Scenario(
        "in-process",
        "Authenticator.authenticate() without HTTP (hit, miss, bad checksum) against one "
        "SHA-256 and a dict lookup; the memory of 100,000 cached keys",
        ["bench/inprocess_auth.py"],
        [],
        ["--rounds", "200"],
        ("postgres",),
    ),
    Scenario(
        "metrics",
        "recording a request in the metrics (plain dicts) against prometheus_client's own "
        "objects; a scrape of one worker and of two",
        ["bench/metrics_cost.py"],
        [],
        [],
    ),
    Scenario(
        "middleware",
        "a FastAPI hello guarded by keyport_client's middleware (one question to /v1/authorize "
        "a request) against the same app unguarded: added latency at 1 connection, throughput",
        ["bench/middleware_bench.py"],
        ["--requests", "3000", "--rounds", "6", "--duration", "5"],
        ["--requests", "300", "--rounds", "2", "--duration", "1"],
    ),
]
BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}


def command(scenario: Scenario, args: argparse.Namespace) -> list[str]:
    argv = [sys.executable, *scenario.script, *(scenario.smoke if args.smoke else scenario.full)]
    if "postgres" in scenario.services:
        argv += ["--postgres", args.postgres]
    if "redis" in scenario.services:
        argv += ["--redis", args.redis]
    return argv


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", help="names from --list, or `all`")
    parser.add_argument("--list", action="store_true", help="the scenarios, and stop")
    parser.add_argument("--smoke", action="store_true", help="seconds each: does it work?")
    parser.add_argument("--postgres", default=POSTGRES, help="a PostgreSQL server's URL")
    parser.add_argument("--redis", default=REDIS, help="a Redis server's URL")
    args = parser.parse_args(argv)
    if args.list or not args.scenarios:
        return args
    names = [s.name for s in SCENARIOS] if args.scenarios == ["all"] else args.scenarios
    unknown = [name for name in names if name not in BY_NAME]
    if unknown:
        parser.error(f"unknown scenario {', '.join(unknown)}: see --list")
    args.scenarios = names
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list or not args.scenarios:
        for scenario in SCENARIOS:
            print(f"{scenario.name:<14} {scenario.compares}")
        return 0
    failed = []
    for name in args.scenarios:
        argv_ = command(BY_NAME[name], args)
        shown = shlex.join(["python" if n == 0 else part for n, part in enumerate(argv_)])
        print(f"\n== {name}: {BY_NAME[name].compares}\n$ {shown}", flush=True)
        started = time.monotonic()
        unbuffered = {**os.environ, "PYTHONUNBUFFERED": "1"}  # its lines in order with ours
        code = subprocess.run(argv_, cwd=ROOT, env=unbuffered, check=False).returncode
        print(f"== {name}: exit {code} after {time.monotonic() - started:.0f} s", flush=True)
        if code != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
