"""`GET /v4/user/me` with many distinct keys cycling vs one key, same server, alternating rounds.

Issue 13's target: 10,000 distinct active keys cycling >= 0.8x one key. With the 10 s cache TTL
each key is read from the database again every 10 s (ahead of its expiry, in the background,
batched), and with Redis each key needs leases of its own, so this is where a per-key cost
would show. Each scenario is warmed up 10 s (every key seen once) before it is measured.

Every scenario's wrk builds each request in a Lua `request()` function (one key's sends the
same one every time): wrk's own CPU a request, taken from the server on two cores, is then
alike for all.

A third scenario, "one, numbered", sends one key with a header numbering each request: no
request repeats the one before it on its connection, so the express lane prepares every
request afresh (web/gate/express.py `ExpressMemo`). Many keys cycling differ from the request before
only in their key, which the memo reads afresh while keeping the rest; one key sends the same
request again and again. Many keys / one key is the issue's figure.

Each round starts the server afresh and measures every scenario `--segments` times in turn
(after `--warmup` seconds the first time, `--rewarm` later): the ratios compare runs seconds
apart, as the machine's speed drifts by up to 2x over minutes. It prints each segment's
ratios and their medians: many keys / one key in requests a second (the issue's figure) and
in capacity (the server's CPU a request, inverted: what one worker sustains when CPU-bound,
less moved by PostgreSQL and wrk competing for the same two cores).

Run (from the repository root; needs wrk, PostgreSQL at --postgres and Redis at --redis):
    .venv/bin/python bench/many_keys.py --keys 10000 --rounds 2 --duration 5 --full-rings

`--full-rings` first gives every key a full ring of recent requests in the database (RING_SIZE
rows of one request each, as a key seen once a flush leaves it), so the flushes' ring trimming
meets production-sized tables.
`--keyport PATH` runs another checkout's `keyport` (A/B against earlier code, same run).

The keys are made in-process through the same service the CLI uses (one transaction each), on
a fresh PostgreSQL database that is dropped at the end; one `keyport serve` worker with Redis
answers every scenario, rate limits raised so that they never trip.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import _cpu
import _keyport
from _procs import Server, free_port, http_status, start_server, stop_server, wait_idle, wait_ready
from _wrk import DONE_FUNCTION, lua_string, run_wrk
from hotpath_compare import KEYPORT, RAISED, drop_postgres, fresh_postgres
from keyport.bootstrap import build_container
from keyport.config import Settings
from keyport.domain.audit import Actor
from keyport.services.observability.usage_recorder import RING_SIZE


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    # Long enough for wrk to reach every one of 10,000 keys once even at ~2,000 req/s, so the
    # measured run is the steady state (entries expiring and refreshed), not first-ever reads.
    parser.add_argument("--warmup", type=int, default=10, help="seconds of wrk before each run")
    parser.add_argument(
        "--segments",
        type=int,
        default=3,
        help="measurements of each scenario a round, one after the other in turn: each "
        "segment's ratio compares runs seconds apart (the machine's speed drifts over minutes)",
    )
    parser.add_argument(
        "--rewarm", type=int, default=3, help="seconds of wrk before each later segment's run"
    )
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--full-rings", action="store_true", help="see the module docstring")
    parser.add_argument("--keyport", type=Path, default=KEYPORT, help="the keyport to serve")
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="in round 1, profile each scenario with py-spy right after its measurement "
        "(8 s, raw) "
        "into DIR/many_keys_one.txt, DIR/many_keys_numbered.txt and DIR/many_keys_many.txt "
        "(py-spy's raw folded stacks, which flame-graph tools read)",
    )
    return parser.parse_args()


async def make_keys(url: str, count: int) -> list[str]:
    container = build_container(Settings(database_url=url))
    await container.migrate()
    try:
        company = await container.companies.resolve_company(None)
        actor = Actor("cli")
        keys = []
        for done in range(count):
            issued = await container.keys.issue_key(
                company.id, name=f"bench {done}", days=30, actor=actor
            )
            keys.append(issued.key)
            if (done + 1) % 1000 == 0:
                print(f"  {done + 1:,} of {count:,} keys made", flush=True)
        return keys
    finally:
        await container.close()


def company_with_keys(database: str, count: int) -> list[str]:
    """A company made by `keyport init` on `database` (a fresh one), then `count` keys of it."""
    with tempfile.TemporaryDirectory(prefix="keyport-bench-") as folder:
        init = ["init", "--company", "Bench", "--owner-email", "owner@bench.example", "--json"]
        _keyport.run_cli_json(KEYPORT, init, _keyport.server_env(database, RAISED), Path(folder))
    print(f"making {count:,} keys in {database}")
    return asyncio.run(make_keys(database, count))


# A full ring as a key seen about once a flush leaves it: RING_SIZE rows of one request each.
FILL_RINGS = f"""
INSERT INTO key_recent_batches (key_id, requests, entries)
SELECT k.id, 1, json_build_array(json_build_array(
  (extract(epoch FROM now() - interval '1 hour') * 1000000)::bigint,
  substr(md5(k.id || g), 1, 24), 'GET', '/v4/user/me', '/v4/user/me', 200, 1.0, '127.0.0.1',
  'bench-filler', NULL, NULL))::text
FROM api_keys AS k, generate_series(1, {RING_SIZE}) AS g
"""


def fill_rings(url: str) -> None:
    print(f"  filling every key's ring with {RING_SIZE} rows of one request")
    subprocess.run(["psql", url, "-q", "-c", FILL_RINGS], check=True)
    # As autovacuum leaves a table long in use: visibility map set, statistics taken.
    subprocess.run(["psql", url, "-q", "-c", "VACUUM ANALYZE key_recent_batches"], check=True)


def cycling_script(path: Path, keys: list[str]) -> Path:
    """Each wrk thread walks the whole list, starting at a different place."""
    table = ",\n".join(lua_string(f"Bearer {key}") for key in keys)
    path.write_text(
        f"local keys = {{\n{table}\n}}\n"
        "local i = math.random(#keys)\n"
        "request = function()\n"
        "  i = i % #keys + 1\n"
        '  return wrk.format("GET", nil, {["Authorization"] = keys[i]})\n'
        "end\n" + DONE_FUNCTION
    )
    return path


def numbered_script(path: Path, key: str) -> Path:
    """One key, each request with a header of its own (`X-Bench-Request: <n>`): no request
    repeats the one before it on its connection, so the express lane's per-connection memo
    (web/gate/express.py `ExpressMemo`) never saves its work: every request is prepared afresh."""
    path.write_text(
        "local n = 0\n"
        "request = function()\n"
        "  n = n + 1\n"
        f'  return wrk.format("GET", nil, {{["Authorization"] = {lua_string(f"Bearer {key}")},'
        ' ["X-Bench-Request"] = tostring(n)})\n'
        "end\n" + DONE_FUNCTION
    )
    return path


def principal_cache(base_url: str) -> tuple[float, float]:
    """(hits, misses) of the principal cache, from /metrics."""
    _, body = http_status(base_url + "/metrics", {}, max_bytes=1 << 20)
    found = {"hits": 0.0, "misses": 0.0}
    for line in body.decode().splitlines():
        for name in found:
            if line.startswith(f'keyport_cache_{name}_total{{cache="principal"}}'):
                found[name] = float(line.rsplit(" ", 1)[1])
    return found["hits"], found["misses"]


def minor_faults(pid: int) -> int:
    """Page faults of a process so far (/proc/PID/stat field 10)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[7])


def profile(pid: int, output: Path, url: str, script: Path, connections: int) -> None:
    """py-spy, 8 s at 500 Hz, raw (folded) stacks, while wrk drives the server."""
    output.parent.mkdir(parents=True, exist_ok=True)
    spy = [str(KEYPORT.parent / "py-spy"), "record", "-p", str(pid), "-d", "8", "-r", "500"]
    recorder = subprocess.Popen(
        [*spy, "-f", "raw", "-o", str(output)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        run_wrk(url, script, 9, connections)
    finally:
        recorder.wait(timeout=60)


def measure(
    server: Server, url: str, name: str, script: Path, args: argparse.Namespace
) -> tuple[float, float]:
    """One wrk run of a scenario: (requests a second, the server's CPU µs a request)."""
    hits_before, misses_before = principal_cache(server.base_url)
    before = _cpu.sample(server.process.pid)
    faults_before = minor_faults(server.process.pid)
    database_before = _cpu.command_cpu_ticks("postgres")
    result = run_wrk(url, script, args.duration, args.connections)
    faults = minor_faults(server.process.pid) - faults_before
    after = _cpu.sample(server.process.pid)
    database_after = _cpu.command_cpu_ticks("postgres")
    hits, misses = principal_cache(server.base_url)
    hits, misses = hits - hits_before, misses - misses_before
    if result.non_2xx_3xx:
        raise SystemExit(f"{name}: {result.non_2xx_3xx} answers were not 2xx")
    ticks = _cpu.ticks_since(before.group_ticks, after.group_ticks)
    cpu_us = ticks / _cpu.CLOCK_TICKS / result.requests * 1e6
    database_ticks = _cpu.ticks_since(database_before, database_after)
    database_us = database_ticks / _cpu.CLOCK_TICKS / result.requests * 1e6
    print(
        f"  {name:<14} {result.requests_per_sec:>9,.0f} req/s"
        f"  {cpu_us:6.1f} µs CPU/req (PostgreSQL {database_us:5.1f})"
        f"  p99 {result.p99_ms:6.1f} ms"
        f"  cache misses {misses / max(hits + misses, 1):.2%}"
        f"  page faults/req {faults / result.requests:.4f}",
        flush=True,
    )
    return result.requests_per_sec, cpu_us


def report(rps: dict[str, list[float]], cpu: dict[str, list[float]], many_name: str) -> None:
    """Ratios of the runs measured next to each other (one segment), and their medians."""
    one_key, one_numbered, many_keys = rps.values()
    ratios = [m / o for m, o in zip(many_keys, one_key, strict=True)]
    verdict = "PASS" if statistics.median(ratios) >= 0.8 else "FAIL"
    print(
        f"{verdict}  {many_name} / one key, req/s (target >= 0.8): "
        f"{statistics.median(ratios):.2f} {[round(r, 2) for r in ratios]}"
    )
    # What one worker sustains when CPU-bound: the inverse ratio of CPU a request.
    capacity = [o / m for o, m in zip(cpu["one key"], cpu[many_name], strict=True)]
    print(
        f"      {many_name} / one key, capacity (CPU a request): "
        f"{statistics.median(capacity):.2f} {[round(r, 2) for r in capacity]}"
    )
    # What many keys cost beyond one when no request repeats its predecessor either way.
    per_key = [m / o for m, o in zip(many_keys, one_numbered, strict=True)]
    print(
        f"      {many_name} / one key numbered, req/s: "
        f"{statistics.median(per_key):.2f} {[round(r, 2) for r in per_key]}"
    )


def main() -> int:
    args = parse_args()
    database = fresh_postgres(args.postgres)
    workdir = Path(tempfile.mkdtemp(prefix="keyport-many-keys-"))
    try:
        env = _keyport.server_env(database, RAISED)
        _keyport.run_cli_json(
            KEYPORT,
            ["init", "--company", "Bench", "--owner-email", "owner@bench.example", "--json"],
            env,
            workdir,
        )
        print(f"making {args.keys:,} keys in {database}")
        keys = asyncio.run(make_keys(database, args.keys))
        if args.full_rings:
            fill_rings(database)
        # One key sent by the same Lua `request()` as the many (wrk's static request, without
        # a Lua call a request, costs wrk less CPU, which the server then has for itself).
        one = cycling_script(workdir / "one.lua", keys[:1])
        numbered = numbered_script(workdir / "numbered.lua", keys[0])
        many = cycling_script(workdir / "many.lua", keys)
        server_env = _keyport.server_env(database, {**RAISED, "KEYPORT_REDIS_URL": args.redis})
        many_name = f"{args.keys:,} keys"
        rps: dict[str, list[float]] = {"one key": [], "one, numbered": [], many_name: []}
        scripts = list(zip(rps, (one, numbered, many), strict=True))
        labels = dict(zip(rps, ("one", "numbered", "many"), strict=True))  # profiles' names
        cpu: dict[str, list[float]] = {name: [] for name in rps}
        for round_number in range(args.rounds):
            print(f"Round {round_number + 1} of {args.rounds}")
            port = free_port()
            argv = [*_keyport.command(args.keyport), "serve", "--host", "127.0.0.1"]
            argv += ["--port", str(port)]
            server = start_server("keyport", argv, server_env, port, workdir / "serve.log", workdir)
            try:
                wait_ready(server, "/healthz", 60.0)
                wait_idle(server, timeout=20.0)
                url = server.base_url + "/v4/user/me"
                status, body = http_status(url, {"Authorization": f"Bearer {keys[-1]}"})
                if status != 200:
                    raise SystemExit(f"expected 200, got {status}: {body!r}")
                for segment in range(args.segments):
                    order = scripts if (round_number + segment) % 2 == 0 else scripts[::-1]
                    for name, script in order:
                        warmup = args.warmup if segment == 0 else args.rewarm
                        run_wrk(url, script, warmup, args.connections)
                        requests_per_sec, cpu_us = measure(server, url, name, script, args)
                        rps[name].append(requests_per_sec)
                        cpu[name].append(cpu_us)
                        if args.profile is not None and round_number == segment == 0:
                            # Right after the measurement, in the state it measured: later,
                            # the many keys' cache entries and leases would have expired.
                            output = args.profile / f"many_keys_{labels[name]}.txt"
                            profile(server.process.pid, output, url, script, args.connections)
                            print(f"  profiled {name} into {output}")
            finally:
                stop_server(server)
        report(rps, cpu, many_name)
        return 0
    finally:
        drop_postgres(args.postgres, database)


if __name__ == "__main__":
    sys.exit(main())
