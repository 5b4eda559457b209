"""Side by side, in alternating rounds: a raw ASGI hello and a Starlette hello, Keyport on
SQLite or PostgreSQL, with and without Redis, the request log or usage recording, a key whose
checksum fails (401), and `/v1/authorize`. bench/run.py names the usual sets of configurations.

Run (from the repository root; needs wrk, PostgreSQL at --postgres, Redis at --redis):
    .venv/bin/python bench/hotpath_compare.py --rounds 3 --duration 5 \\
        --configs raw-uvicorn,sqlite,sqlite-nolog,pg,pg-redis

Each round starts every configuration's server afresh, in an order that is reversed every
other round, measures `GET` with `wrk -t2 -c<connections> -d<duration>s` after a warm-up, and
records requests/s and the server's CPU time per request (all its processes, from /proc).
On a shared 2-core VM absolute figures move 2-3x between runs, so the verdicts are ratios
within a round (median over rounds): req/s of a configuration / req/s of its reference.
Keyport's own work per request is estimated as 1/rps(Keyport) - 1/rps(raw hello), same round.
Rate limits, and the failed-authentication limit, are raised so that they never trip (the
limiters still run on every request): the 401 configuration measures 401s, not 429s.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import _cpu
import _keyport
from _procs import HOST, free_port, http_status, start_server, stop_server, wait_idle, wait_ready
from _wrk import run_wrk, write_script

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
KEYPORT = VENV_BIN / "keyport"
RAISED = {
    "KEYPORT_RATE_LIMIT": "1000000",
    "KEYPORT_RATE_LIMIT_BURST": "1000000",
    "KEYPORT_AUTH_FAILURE_LIMIT": "1000000",
}


@dataclass(frozen=True)
class Config:
    name: str
    server: str  # uvicorn | keyport
    database: str  # "" (no Keyport), sqlite, pg
    env: dict[str, str] = field(default_factory=dict)
    workers: int = 1
    app: str = ""  # the hello a plain uvicorn serves (module:app in bench/)
    keyport: Path = KEYPORT
    path: str = "/v4/user/me"  # what wrk asks Keyport for
    status: int = 200  # what every answer must be
    credential: str = "key"  # or "token": the owner's personal access token, no user header


CONFIGS = {
    c.name: c
    for c in [
        Config("raw-uvicorn", "uvicorn", "", app="raw_hello:app"),
        Config("starlette", "uvicorn", "", app="starlette_hello:app"),
        Config("sqlite", "keyport", "sqlite"),
        Config("sqlite-401", "keyport", "sqlite", status=401),  # a key whose checksum fails
        Config("sqlite-nolog", "keyport", "sqlite", {"KEYPORT_REQUEST_LOG": "false"}),
        Config("sqlite-nousage", "keyport", "sqlite", {"KEYPORT_USAGE_RECORDING": "false"}),
        Config("sqlite-authorize", "keyport", "sqlite", path="/v1/authorize"),
        Config("sqlite-pat", "keyport", "sqlite", credential="token"),
        Config("pg", "keyport", "pg"),
        Config("pg-redis", "keyport", "pg", {"KEYPORT_REDIS_URL": "<redis>"}),
        Config("pg-redis-2w", "keyport", "pg", {"KEYPORT_REDIS_URL": "<redis>"}, workers=2),
        Config("pg-authorize", "keyport", "pg", path="/v1/authorize"),
        Config(
            "pg-redis-authorize",
            "keyport",
            "pg",
            {"KEYPORT_REDIS_URL": "<redis>"},
            path="/v1/authorize",
        ),
    ]
}
# (numerator, denominator, target or None): the ratios shown when both were measured.
RATIOS = [
    ("sqlite", "raw-uvicorn", 0.5),
    ("sqlite", "starlette", None),
    ("sqlite-401", "sqlite", 1.0),
    ("sqlite-authorize", "sqlite", 0.9),
    ("sqlite-pat", "sqlite", 0.9),
    ("pg-authorize", "pg", 0.9),
    ("pg-redis", "pg", 0.9),
    ("pg-redis-2w", "pg-redis", 1.5),
    ("pg-redis-authorize", "pg-authorize", 0.9),
    ("sqlite", "sqlite-nolog", 0.95),
    ("sqlite", "sqlite-nousage", 0.95),
    ("sqlite", "sqlite@main", 1.0),
    ("pg-redis", "pg-redis@main", 1.0),
    ("sqlite@main", "sqlite-nolog@main", 0.95),
    ("pg-redis@main", "pg@main", 0.9),
]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="raw-uvicorn,sqlite,sqlite-nolog,pg,pg-redis")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    add_service_options(parser)
    args = parser.parse_args(argv)
    args.configs = [config_named(name, args.main_keyport) for name in args.configs.split(",")]
    return args


def add_service_options(parser: argparse.ArgumentParser) -> None:
    """Where PostgreSQL and Redis are, and which keyport NAME@main configurations run."""
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument(
        "--main-keyport",
        type=Path,
        help="the keyport that NAME@main configurations run: another checkout's "
        "(e.g. ../main/.venv/bin/keyport), for an A/B against earlier code",
    )


def server_extra_env(config: Config, redis_url: str) -> dict[str, str]:
    """The limits raised, and the configuration's own environment with Redis's URL put in."""
    env = dict(RAISED)
    env.update({k: (redis_url if v == "<redis>" else v) for k, v in config.env.items()})
    return env


def config_named(name: str, main_keyport: Path | None) -> Config:
    base, _, at = name.partition("@")
    if base not in CONFIGS:
        raise SystemExit(f"unknown configuration {base!r}: one of {', '.join(CONFIGS)}")
    config = CONFIGS[base]
    if not at:
        return config
    if main_keyport is None:
        raise SystemExit(f"{name}: say which keyport it runs with --main-keyport PATH")
    return dataclasses.replace(config, name=name, keyport=main_keyport)


def fresh_postgres(base: str) -> str:
    name = f"keyport_bench_{uuid.uuid4().hex[:8]}"
    subprocess.run(["psql", base, "-q", "-c", f'CREATE DATABASE "{name}"'], check=True)
    return base.rsplit("/", 1)[0] + "/" + name


def drop_postgres(base: str, url: str) -> None:
    name = url.rsplit("/", 1)[1]
    subprocess.run(
        ["psql", base, "-q", "-c", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'], check=False
    )


def set_up(url: str, workdir: Path, keyport: Path, tokens: bool) -> _keyport.KeyportSetup:
    """A company and a key, made by `keyport` (each build serves a database of its schema);
    with `tokens`, the owner's personal access token too."""
    env = _keyport.server_env(url, RAISED)
    init = ["init", "--company", "Bench", "--owner-email", "owner@bench.example", "--json"]
    company = _keyport.run_cli_json(keyport, init, env, workdir)
    created = _keyport.run_cli_json(
        keyport, ["key", "create", "--days", "30", "--json"], env, workdir
    )
    token = ""
    if tokens:
        made = ["token", "create", "--user", "owner@bench.example", "--name", "bench", "--json"]
        token = _keyport.run_cli_json(keyport, made, env, workdir)["token"]
    return _keyport.KeyportSetup(
        url, company["companyId"], company["ownerId"], created["id"], created["key"], token
    )


def argv_for(config: Config, port: int) -> list[str]:
    if config.app:
        return [
            str(VENV_BIN / "uvicorn"),
            config.app,
            "--app-dir",
            str(ROOT / "bench"),
            "--host",
            HOST,
            "--port",
            str(port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
        ]
    return [
        *_keyport.command(config.keyport),
        "serve",
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        str(config.workers),
    ]


def measure(
    config: Config,
    setups: dict[str, _keyport.KeyportSetup],
    args: argparse.Namespace,
    workdir: Path,
) -> tuple[float, float]:
    env = server_extra_env(config, args.redis)
    headers: dict[str, str] = {}
    path = "/"
    if config.database:
        setup = setups[(config.database, config.keyport)]
        env_all = _keyport.server_env(setup.database_url, env)
        key = setup.token if config.credential == "token" else setup.key
        key = _keyport.bad_checksum_key(key) if config.status == 401 else key
        headers = {"Authorization": f"Bearer {key}"}
        path = config.path
    else:
        env_all = _keyport.server_env("", env)
    port = free_port()
    server = start_server(
        config.name, argv_for(config, port), env_all, port, workdir / f"{config.name}.log", workdir
    )
    try:
        wait_ready(server, path if not config.database else "/healthz", 60.0)
        wait_idle(server, timeout=20.0)
        status, body = http_status(server.base_url + path, headers)
        if status != config.status:
            raise SystemExit(f"{config.name}: expected {config.status}, got {status}: {body!r}")
        script = write_script(workdir / f"{config.name}.lua", headers)
        run_wrk(server.base_url + path, script, args.warmup, args.connections)
        before = _cpu.sample(server.process.pid)
        result = run_wrk(server.base_url + path, script, args.duration, args.connections)
        after = _cpu.sample(server.process.pid)
        status, body = http_status(server.base_url + path, headers)  # still the same answer?
    finally:
        stop_server(server)
    refused = result.requests if config.status >= 400 else 0  # every answer is its 401
    if status != config.status or result.non_2xx_3xx != refused:
        raise SystemExit(f"{config.name}: {result.non_2xx_3xx} non-2xx, then {status}: {body!r}")
    if any(result.socket_errors.values()):
        raise SystemExit(f"{config.name}: socket errors {result.socket_errors}")
    ticks = _cpu.ticks_since(before.group_ticks, after.group_ticks)
    cpu_us = ticks / _cpu.CLOCK_TICKS / result.requests * 1e6
    busy = _cpu.usage_between(before, after).machine_busy_cores
    print(
        f"  {config.name:<16} {result.requests_per_sec:>9,.0f} req/s  {cpu_us:6.1f} µs CPU/req"
        f"  p99 {result.p99_ms:6.1f} ms  machine busy {busy:.2f} cores"
    )
    return result.requests_per_sec, cpu_us


def median_ratio(rps: dict[str, list[float]], top: str, bottom: str) -> tuple[float, list[float]]:
    pairs = [a / b for a, b in zip(rps[top], rps[bottom], strict=False)]
    return statistics.median(pairs), pairs


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    databases = sorted({(c.database, c.keyport) for c in args.configs if c.database})
    rps: dict[str, list[float]] = {c.name: [] for c in args.configs}
    cpu: dict[str, list[float]] = {c.name: [] for c in args.configs}
    cleanups: list[Callable[[], None]] = []
    with tempfile.TemporaryDirectory(prefix="keyport-hotpath-") as tmp:
        workdir = Path(tmp)
        try:
            setups: dict[tuple[str, Path], _keyport.KeyportSetup] = {}
            for n, (database, keyport) in enumerate(databases):
                if database == "sqlite":
                    folder = workdir / f"sqlite-{n}"
                    folder.mkdir()
                    url = _keyport.database_url(folder)
                else:
                    url = fresh_postgres(args.postgres)
                    cleanups.append(functools.partial(drop_postgres, args.postgres, url))
                tokens = any(
                    c.credential == "token" and (c.database, c.keyport) == (database, keyport)
                    for c in args.configs
                )
                setups[(database, keyport)] = set_up(url, workdir, keyport, tokens)
            for n in range(args.rounds):
                print(f"Round {n + 1} of {args.rounds}")
                order = args.configs if n % 2 == 0 else args.configs[::-1]
                for config in order:
                    r, c = measure(config, setups, args, workdir)
                    rps[config.name].append(r)
                    cpu[config.name].append(c)
        finally:
            for cleanup in cleanups:
                cleanup()
    print(
        "\nmedians: "
        + ", ".join(
            f"{name} {statistics.median(v):,.0f} req/s ({statistics.median(cpu[name]):.1f} µs CPU)"
            for name, v in rps.items()
        )
    )
    print("\nRatios, median over rounds of each round's ratio. 'req/s' is what wrk measured;")
    print("'capacity' is CPU per request of the reference / of this one: what one worker")
    print("sustains when CPU-bound, the figure least disturbed by other load on the machine.")
    for top, bottom, target in RATIOS:
        if rps.get(top) and rps.get(bottom):
            ratio, pairs = median_ratio(rps, top, bottom)
            capacity, cap_pairs = median_ratio(
                {k: [1 / v for v in vs] for k, vs in cpu.items()}, top, bottom
            )
            if target is None:
                verdict, wanted = "    ", ""
            else:
                verdict = "PASS" if min(ratio, capacity) >= target else "FAIL"
                wanted = f" (target >= {target})"
            print(
                f"{verdict}  {top} / {bottom}{wanted}: req/s {ratio:.2f} "
                f"[{', '.join(f'{p:.2f}' for p in pairs)}], capacity {capacity:.2f} "
                f"[{', '.join(f'{p:.2f}' for p in cap_pairs)}]"
            )
    if rps.get("raw-uvicorn"):
        print("\nKeyport's own work per request: CPU µs/request minus raw-uvicorn's (same round),")
        print("and 1/rps - 1/rps(raw-uvicorn) (only meaningful on a quiet machine):")
        for name in rps:
            if name.startswith(("sqlite", "pg")) and "2w" not in name:
                own_cpu = [k - r for k, r in zip(cpu[name], cpu["raw-uvicorn"], strict=False)]
                own = [
                    1e6 / k - 1e6 / r for k, r in zip(rps[name], rps["raw-uvicorn"], strict=False)
                ]
                print(
                    f"  {name:<18} CPU {statistics.median(own_cpu):5.1f} µs "
                    f"[{', '.join(f'{o:.1f}' for o in own_cpu)}]; by req/s "
                    f"{statistics.median(own):6.1f} µs [{', '.join(f'{o:.1f}' for o in own)}]"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
