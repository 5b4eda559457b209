"""Two configurations served at the same time, each driven by its own wrk: the ratio of their
costs a request, for differences smaller than the machine's drift.

Why: bench/hotpath_compare.py measures configurations one after the other, and on this shared
2-core VM a configuration's throughput moves by 10-40 % between runs minutes apart
(bench/README.md, sessions 10-12): a 5 % difference (the request log's target, on vs off
>= 0.95) is not resolved by any number of such rounds. Served side by side, both servers meet
the same machine at the same moment — the same neighbours, the same cache pressure, the same
clock speed — and the scheduler shares the cores between them, so what each answers in the same
seconds, and the CPU each spent a request, compare like with like.

Each round starts both servers afresh (each on a database of its own), warms both up together,
then runs both wrk for `--duration` seconds at once (`-t1 -c<connections>` each). A round's
ratios: requests/s of the first / of the second, and "capacity", CPU a request of the second
/ of the first (what one worker sustains when CPU-bound). Verdicts are medians over rounds.

`--keys N` has the first side's wrk cycle through N keys of its company instead of sending
one (bench/many_keys.py's scenario, made the same way; `--full-rings` as there): issue 13's
"10,000 keys / one key" measured side by side, where bench/many_keys.py measures it in turn.
Many keys' database work (usage rows, cache refreshes) then runs on the machine both servers
share, so it slows the one-key side too: the req/s ratio flatters many keys by about
PostgreSQL's share of the machine (printed); the capacity ratio (each server's own CPU a
request) does not.

Run (from the repository root; needs wrk; PostgreSQL and Redis for the pg configurations):
    .venv/bin/python bench/paired_cost.py --pair sqlite,sqlite-nolog --rounds 6 --duration 10
    .venv/bin/python bench/paired_cost.py --pair sqlite,sqlite   # the method's own bias: ~1.00
    .venv/bin/python bench/paired_cost.py --pair pg-redis,pg-redis --keys 10000 --full-rings \\
        --rounds 4 --duration 10 --warmup 20
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import _cpu
import _keyport
from _procs import Server, free_port, http_status, start_server, stop_server, wait_idle, wait_ready
from _wrk import WrkResult, run_wrk, write_script
from hotpath_compare import (
    RATIOS,
    Config,
    add_service_options,
    argv_for,
    config_named,
    drop_postgres,
    fresh_postgres,
    server_extra_env,
    set_up,
)
from many_keys import cycling_script, fill_rings, make_keys

MANY_KEYS_TARGET = 0.8  # issue 13: 10,000 keys cycling >= 0.8x one key


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pair", default="sqlite,sqlite-nolog", help="FIRST,SECOND")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--duration", type=int, default=10, help="seconds of each round")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32, help="for each wrk")
    parser.add_argument(
        "--keys", type=int, default=1, help="keys the first side's wrk cycles through"
    )
    parser.add_argument("--full-rings", action="store_true", help="as bench/many_keys.py's")
    add_service_options(parser)
    return parser.parse_args()


class Side:
    """One configuration of the pair: its database, its key, its server while a round runs."""

    def __init__(
        self, config: Config, args: argparse.Namespace, folder: Path, keys: int = 1
    ) -> None:
        if config.raw or not config.database:
            raise SystemExit(f"{config.name}: only Keyport configurations can be paired")
        self.config = config
        self.folder = folder
        self.folder.mkdir()
        if config.database == "sqlite":
            self.database = _keyport.database_url(self.folder)
            self.postgres_base: str | None = None
        else:
            self.database = fresh_postgres(args.postgres)
            self.postgres_base = args.postgres
        self.setup = set_up(self.database, self.folder, config.keyport)
        self.env = _keyport.server_env(self.database, server_extra_env(config, args.redis))
        self.headers = {"Authorization": f"Bearer {self.setup.key}"}
        self.name = config.name
        cycled = [self.setup.key]
        if keys > 1:
            if self.postgres_base is None:
                raise SystemExit("--keys needs a PostgreSQL configuration first")
            print(f"making {keys - 1:,} more keys for {config.name}")
            cycled += asyncio.run(make_keys(self.database, keys - 1))
            if args.full_rings:
                fill_rings(self.database)
            self.name = f"{config.name}, {keys:,} keys"
        script = self.folder / "wrk.lua"
        # With --keys both sides' wrk build each request in Lua, as many keys need.
        if args.keys > 1:
            self.script = cycling_script(script, cycled)
        else:
            self.script = write_script(script, self.headers)
        self.server: Server | None = None

    @property
    def url(self) -> str:
        return self._serving().base_url + self.config.path

    def cpu(self) -> _cpu.CpuSample:
        return _cpu.sample(self._serving().process.pid)

    def minor_faults(self) -> int:
        """Page faults of the server's process so far (/proc/PID/stat field 10): memory the
        allocator gave back to the OS and took again shows here (bench/README.md, session 12)."""
        stat = Path(f"/proc/{self._serving().process.pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[7])

    def _serving(self) -> Server:
        if self.server is None:
            raise RuntimeError(f"{self.config.name} is not being served")
        return self.server

    def start(self) -> None:
        port = free_port()
        argv = argv_for(self.config, port)
        log = self.folder / "serve.log"
        self.server = start_server(self.config.name, argv, self.env, port, log, self.folder)
        wait_ready(self.server, "/healthz", 60.0)
        wait_idle(self.server, timeout=20.0)
        status, body = http_status(self.url, self.headers)
        if status != 200:
            raise SystemExit(f"{self.config.name}: expected 200, got {status}: {body!r}")

    def stop(self) -> None:
        if self.server is not None:
            stop_server(self.server)
            self.server = None

    def drop(self) -> None:
        if self.postgres_base is not None:
            drop_postgres(self.postgres_base, self.database)


def both(sides: list[Side], duration: int, connections: int) -> list[WrkResult]:
    """wrk against each side at the same time."""
    with ThreadPoolExecutor(len(sides)) as pool:
        runs = [
            pool.submit(run_wrk, side.url, side.script, duration, connections, 1) for side in sides
        ]
        return [run.result() for run in runs]


def round_of(sides: list[Side], args: argparse.Namespace) -> list[tuple[float, float]]:
    """(requests/s, CPU µs a request) of each side, served together, in the order given (the
    caller alternates it: which server starts first, which wrk is launched first)."""
    for side in sides:
        side.start()
    try:
        both(sides, args.warmup, args.connections)
        before = [side.cpu() for side in sides]
        faults_before = [side.minor_faults() for side in sides]
        database_before = _cpu.command_cpu_ticks("postgres")
        results = both(sides, args.duration, args.connections)
        database_ticks = _cpu.ticks_since(database_before, _cpu.command_cpu_ticks("postgres"))
        faults = [side.minor_faults() - f for side, f in zip(sides, faults_before, strict=True)]
        after = [side.cpu() for side in sides]
    finally:
        for side in sides:
            side.stop()
    measured = []
    for side, result, start, end, faulted in zip(
        sides, results, before, after, faults, strict=True
    ):
        if result.non_2xx_3xx or any(result.socket_errors.values()):
            raise SystemExit(f"{side.name}: {result.non_2xx_3xx} non-2xx, {result.socket_errors}")
        ticks = _cpu.ticks_since(start.group_ticks, end.group_ticks)
        cpu_us = ticks / _cpu.CLOCK_TICKS / result.requests * 1e6
        measured.append((result.requests_per_sec, cpu_us))
        print(
            f"  {side.name:<16} {result.requests_per_sec:>9,.0f} req/s"
            f"  {cpu_us:6.1f} µs CPU/req  p99 {result.p99_ms:6.1f} ms"
            f"  page faults/req {faulted / result.requests:.4f}"
        )
    database_us = database_ticks / _cpu.CLOCK_TICKS / sum(r.requests for r in results) * 1e6
    print(f"  PostgreSQL {database_us:.1f} µs CPU a request of both")
    return measured


def main() -> int:
    args = parse_args()
    names = args.pair.split(",")
    if len(names) != 2:
        raise SystemExit("--pair takes two configurations: FIRST,SECOND")

    configs = [config_named(name, args.main_keyport) for name in names]
    with tempfile.TemporaryDirectory(prefix="keyport-paired-") as tmp:
        sides: list[Side] = []
        try:
            for n, config in enumerate(configs):
                keys = args.keys if n == 0 else 1
                sides.append(Side(config, args, Path(tmp) / f"{n}-{config.name}", keys))
            rps_ratios, capacities = [], []
            for n in range(args.rounds):
                print(f"Round {n + 1} of {args.rounds}")
                if n % 2 == 0:
                    (rps_a, cpu_a), (rps_b, cpu_b) = round_of(sides, args)
                else:
                    (rps_b, cpu_b), (rps_a, cpu_a) = round_of(sides[::-1], args)
                rps_ratios.append(rps_a / rps_b)
                capacities.append(cpu_b / cpu_a)
        finally:
            for side in sides:
                side.stop()
                side.drop()
    first, second = (side.name for side in sides)
    target = next((t for top, bottom, t in RATIOS if (top, bottom) == tuple(names)), None)
    if args.keys > 1 and names[0] == names[1]:
        target = MANY_KEYS_TARGET
    ratio, capacity = statistics.median(rps_ratios), statistics.median(capacities)
    verdict = "" if target is None else ("PASS " if min(ratio, capacity) >= target else "FAIL ")
    print(
        f"{verdict}{first} / {second}"
        + (f" (target >= {target})" if target is not None else "")
        + f": req/s {ratio:.3f} [{', '.join(f'{r:.3f}' for r in rps_ratios)}],"
        f" capacity {capacity:.3f} [{', '.join(f'{c:.3f}' for c in capacities)}]"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
