"""What usage recording costs the request path: the same wrk run with it on and off.

Run: /work/main/.venv/bin/python bench/usage_overhead.py [--rounds 8] [--duration 6] [--quick]

One SQLite database, one 30-day key, `keyport serve` with 1 worker on a free 127.0.0.1 port,
authenticated GET /v4/user/me with `wrk -t2 -c<connections> -d<duration>s` after a warm-up.
Each round runs a fresh server with usage recording off (KEYPORT_USAGE_RECORDING=false), then
one with it on (the default: counted in memory, flushed every 5 s) — or the other way round,
alternating — so each pair sees the same state of a shared machine. `--reference` adds a run
with recording on and the JSON request log off.

Measured per run: requests/s and the server's CPU time per request (all its threads, from
/proc). The one worker is CPU-bound, so the throughput it can sustain is 1 / CPU per request.
On this shared 2-core VM a single run's numbers swing by a fifth, so the verdict is the median
over rounds of each pair's ratio (target: overhead below 5 %). Also reported: the in-process
cost of `observe` and of a flush (bench/_usage_cost.py), and, after SIGTERM stops, how many
requests the database counted against how many wrk completed. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import signal
import sqlite3
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import FrameType

import _cpu
import _keyport
from _procs import HOST, free_port, http_status, start_server, stop_server, wait_idle, wait_ready
from _report import machine_description, print_machine
from _usage_cost import InProcessCost, in_process_cost
from _wrk import WrkError, run_wrk, write_script

BENCH_DIR = Path(__file__).resolve().parent
KEYPORT = BENCH_DIR.parent / ".venv" / "bin" / "keyport"
TARGET_OVERHEAD = 0.05
OFF, ON, ON_NO_LOG = "recording off", "recording on", "recording on, no request log"
# Every request must be a 200: a rate limit (429) would measure the refusal instead.
BASE_ENV = {"KEYPORT_RATE_LIMIT": "0"}
CONFIGS = {
    OFF: {"KEYPORT_USAGE_RECORDING": "false"},
    ON: {"KEYPORT_USAGE_RECORDING": "true"},
    ON_NO_LOG: {"KEYPORT_USAGE_RECORDING": "true", "KEYPORT_REQUEST_LOG": "false"},
}
PAIR = (OFF, ON)


@dataclass
class Runs:
    rps: dict[str, list[float]] = field(default_factory=lambda: {c: [] for c in CONFIGS})
    # Server CPU time per request, in microseconds: what a request costs the worker.
    cpu_us: dict[str, list[float]] = field(default_factory=lambda: {c: [] for c in CONFIGS})
    sent_with_recording: int = 0  # requests wrk completed while recording was on
    invalid: bool = False  # some answer was not a 200: the numbers measure something else
    notes: list[str] = field(default_factory=list)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=6, help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=8, help="on/off pairs")
    parser.add_argument(
        "--reference", action="store_true", help="also run: recording on, request log off"
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=30.0,
        help="seconds to wait for other load on the machine before a run",
    )
    parser.add_argument("--quick", action="store_true", help="smoke test: 1 round of 3 s")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for every server; repeatable",
    )
    args = parser.parse_args(argv)
    args.extra_env = {**BASE_ENV, **dict(item.split("=", 1) for item in args.server_env)}
    if args.quick:
        args.duration, args.warmup, args.rounds, args.quiet_wait = 3, 1, 1, 5.0
    args.configs = [*PAIR, ON_NO_LOG] if args.reference else list(PAIR)
    return args


def measure(
    config: str, setup: _keyport.KeyportSetup, workdir: Path, args: argparse.Namespace, runs: Runs
) -> None:
    env = _keyport.server_env(setup.database_url, {**args.extra_env, **CONFIGS[config]})
    port = free_port()
    log_path = workdir / f"{config.replace(' ', '-').replace(',', '')}.log"
    argv = [str(KEYPORT), "serve", "--host", HOST, "--port", str(port), "--workers", "1"]
    server = start_server("keyport", argv, env, port, log_path, workdir)
    headers = {"Authorization": f"Bearer {setup.key}"}
    try:
        wait_ready(server, "/healthz", 60.0)
        wait_idle(server, timeout=20.0)
        status, body = http_status(server.base_url + "/v4/user/me", headers)
        if status != 200:
            raise SystemExit(f"{config}: expected 200, got {status}: {body!r}")
        busy = _cpu.wait_machine_quiet(args.quiet_wait, 0.15)
        if busy >= 0.15:
            runs.notes.append(f"{config}: machine busy ({busy:.2f} cores) when measured")
        script = write_script(workdir / "me.lua", headers)
        url = server.base_url + "/v4/user/me"
        warm = run_wrk(url, script, args.warmup, args.connections)
        before = _cpu.sample(server.process.pid)
        result = run_wrk(url, script, args.duration, args.connections)
        cpu_seconds = server_cpu_seconds(before, _cpu.sample(server.process.pid))
    finally:
        stopped = stop_server(server)
    if not stopped.startswith("stopped cleanly"):
        runs.notes.append(f"{config}: server {stopped}")
    if result.non_2xx_3xx or any(result.socket_errors.values()):
        runs.invalid = True
        runs.notes.append(f"{config}: {result.non_2xx_3xx} non-2xx, errors {result.socket_errors}")
    runs.rps[config].append(result.requests_per_sec)
    runs.cpu_us[config].append(cpu_seconds / result.requests * 1e6)
    if config != OFF:
        runs.sent_with_recording += warm.requests + result.requests + 1
    print(
        f"  {config:<30} {result.requests_per_sec:>9,.0f} req/s  "
        f"{runs.cpu_us[config][-1]:6.1f} µs CPU/request  p99 {result.p99_ms:.1f} ms"
    )


def server_cpu_seconds(before: _cpu.CpuSample, after: _cpu.CpuSample) -> float:
    """CPU the server's processes used between two samples (its threads included)."""
    ticks = _cpu.ticks_since(before.group_ticks, after.group_ticks)
    return ticks / _cpu.CLOCK_TICKS


def recorded_requests(setup: _keyport.KeyportSetup) -> int:
    path = setup.database_url.split("///", 1)[1]
    with sqlite3.connect(path) as connection:
        row = connection.execute(
            "SELECT COALESCE(SUM(success + client_error + server_error), 0) "
            "FROM key_usage_minutes WHERE key_id = ?",
            (setup.key_id,),
        ).fetchone()
    return int(row[0])


def report(
    runs: Runs, recorded: int, cost: InProcessCost, args: argparse.Namespace
) -> dict[str, object]:
    rps = {config: statistics.median(values) for config, values in runs.rps.items() if values}
    cpu = {c: statistics.median(values) for c, values in runs.cpu_us.items() if values}
    # A worker is CPU-bound here, so the rate it can sustain is 1 / (CPU per request).
    pairs = [off / on for off, on in zip(runs.cpu_us[OFF], runs.cpu_us[ON], strict=False)]
    capacity = statistics.median(pairs)
    overhead = 1 - capacity
    print()
    for config in args.configs:
        each = ", ".join(f"{v:,.0f}" for v in runs.rps[config])
        print(
            f"{config:<30} median {rps[config]:>7,.0f} req/s ({each}); "
            f"{cpu[config]:.1f} µs CPU/request"
        )
    verdict = "PASS" if overhead < TARGET_OVERHEAD else "FAIL"
    if runs.invalid:
        verdict = "INVALID (not every answer was a 200, see the notes)"
    print(
        f"\nthroughput a worker sustains, recording on / off, median of {len(pairs)} pairs: "
        f"{capacity:.3f} → overhead {overhead:+.1%} (target < {TARGET_OVERHEAD:.0%}): {verdict}"
    )
    print("pairs: " + ", ".join(f"{p:.3f}" for p in pairs))
    print(f"measured req/s, recording on / off: {rps[ON] / rps[OFF]:.3f} (noisy on a shared VM)")
    per_request = cost.observe_us + cost.flush_us
    print(
        f"in one process: observe {cost.observe_us:.2f} µs + flush {cost.flush_us:.2f} µs per "
        f"request (batches of {cost.batch:,}) = {per_request / cpu[OFF]:.1%} of the "
        f"{cpu[OFF]:.0f} µs a request costs with recording off"
    )
    print(
        f"requests counted in the database: {recorded:,} "
        f"(wrk completed {runs.sent_with_recording:,} with recording on; the server may "
        "have answered a few more that wrk cut off at the end)"
    )
    for note in runs.notes:
        print(f"note: {note}")
    return {
        "medians_rps": rps,
        "medians_cpu_us_per_request": cpu,
        "runs_rps": runs.rps,
        "runs_cpu_us_per_request": runs.cpu_us,
        "capacity_ratio_on_off": capacity,
        "pair_ratios": pairs,
        "rps_ratio_on_off": rps[ON] / rps[OFF],
        "overhead": overhead,
        "in_process_us_per_request": {"observe": cost.observe_us, "flush": cost.flush_us},
        "verdict": verdict,
        "recorded_requests": recorded,
        "wrk_completed_with_recording": runs.sent_with_recording,
        "notes": runs.notes,
        "settings": {
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "connections": args.connections,
            "rounds": args.rounds,
            "server_env": args.extra_env,
            "command": " ".join(sys.argv),
        },
    }


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    machine = machine_description()
    print_machine(machine)
    runs = Runs()
    with tempfile.TemporaryDirectory(prefix="keyport-usage-bench-") as tmp:
        workdir = Path(tmp)
        setup = _keyport.set_up(KEYPORT, workdir, {})
        try:
            for round_number in range(args.rounds):
                print(f"Round {round_number + 1} of {args.rounds}")
                order = args.configs if round_number % 2 == 0 else args.configs[::-1]
                for config in order:
                    measure(config, setup, workdir, args, runs)
        except (KeyboardInterrupt, WrkError) as stopped:
            print(f"\nStopped early: {stopped!r}")
            return 130
        recorded = recorded_requests(setup)
        cost = in_process_cost(setup.database_url, setup.key_id)
        summary = report(runs, recorded, cost, args)
    stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
    results = BENCH_DIR / "results" / f"usage-{stamp}.json"
    results.parent.mkdir(exist_ok=True)
    results.write_text(json.dumps({"machine": machine, **summary}, indent=2))
    print(f"\nResults written to {results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
