"""Instructions a request costs, counted by valgrind (callgrind): the raw ASGI hello on
uvicorn vs Keyport's `GET /v4/user/me` (express lane, defaults, limits raised), in one process.

Why: on the shared 2-core VMs a configuration's CPU a request moves up to 2x between rounds
minutes apart, more than most changes being measured. An instruction count does not move with
the machine: it says whether a change made a request do less, not how long that took. It
leaves out the kernel (a recv and a send a request) and counts neither wall time nor cache
misses, so it is no substitute for the served figures (bench/hotpath_compare.py), only a
steady witness beside them.

Method: the same process is run three times under callgrind — (1) N raw and N Keyport
requests, (2) 4N raw and N Keyport, (3) N raw and 4N Keyport — after the same warm-up, so
the start-up (imports, migrations) cancels out: (2) - (1) is 3N raw requests, (3) - (1) is 3N
Keyport requests. Background work that runs on a timer (usage flush, log writes, invalidation
polls) is charged to whichever requests it interrupts, so the raw figure moves by a few
per cent between runs; Keyport's by less.

    .venv/bin/python bench/instruction_count.py                 # this checkout
    .venv/bin/python bench/instruction_count.py --src /tmp/old/src   # a worktree of another
    KEYPORT_REQUEST_LOG=false .venv/bin/python bench/instruction_count.py

Needs valgrind (Debian: `apt-get install valgrind`); takes 3-5 minutes (the three runs in
parallel).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import uvloop
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import _keyport
from bench import protocol_cost as cost

WARM_UP = 500
KEEP_ALIVE = 3600.0  # seconds: under valgrind a batch outlasts uvicorn's 5 s keep-alive


async def drive(setup: _keyport.KeyportSetup, raw_requests: int, keyport_requests: int) -> None:
    from keyport.web.http_protocol import KeyportHttpProtocol

    env = {
        "KEYPORT_DATABASE_URL": setup.database_url,
        **cost.LIMITS,
        "KEYPORT_REQUEST_LOG": os.environ.get("KEYPORT_REQUEST_LOG", "true"),
    }
    app, stop = await cost.keyport_app(env)
    me = cost.request_bytes("/v4/user/me", setup.key)
    keyport = cost.Connection(app, KeyportHttpProtocol, me)
    raw = cost.Connection(cost.raw_app, HttpToolsProtocol, cost.request_bytes("/", None))
    for connection in (keyport, raw):
        connection.protocol.timeout_keep_alive = KEEP_ALIVE
        await connection.batch(WARM_UP)
    await raw.batch(raw_requests)
    await keyport.batch(keyport_requests)
    await stop()


def run_driver(raw_requests: int, keyport_requests: int) -> None:
    with tempfile.TemporaryDirectory(prefix="keyport-instructions-") as folder:
        setup = _keyport.set_up(cost.KEYPORT, Path(folder), cost.LIMITS)
        with cost.stdout_discarded():
            uvloop.run(drive(setup, raw_requests, keyport_requests))


def counted(
    src: Path | None, raw_requests: int, keyport_requests: int, out: Path
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    if src is not None:
        env["PYTHONPATH"] = str(src)
    argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable]
    argv += [__file__, "--drive", str(raw_requests), str(keyport_requests)]
    return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def instructions(out: Path) -> int:
    found = re.search(rb"^summary: (\d+)$", out.read_bytes(), re.MULTILINE)
    if found is None:
        raise SystemExit(f"no instruction count in {out}: did valgrind fail?")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="N (see the docstring)")
    parser.add_argument("--src", type=Path, default=None, help="another checkout's src/")
    parser.add_argument("--drive", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drive:
        run_driver(*args.drive)
        return
    n = args.requests
    with tempfile.TemporaryDirectory(prefix="keyport-callgrind-") as folder:
        plans = {"base": (n, n), "raw": (4 * n, n), "keyport": (n, 4 * n)}
        outs = {name: Path(folder) / f"{name}.out" for name in plans}
        runs = [counted(args.src, *plans[name], outs[name]) for name in plans]
        for run in runs:
            run.wait()
        base, raw, keyport = (instructions(outs[name]) for name in plans)
    per_raw = (raw - base) / (3 * n)
    per_keyport = (keyport - base) / (3 * n)
    print(f"instructions a request (callgrind, {3 * n:,} requests each, one process):")
    print(f"  raw hello            {per_raw:10,.0f}")
    print(f"  keyport /v4/user/me  {per_keyport:10,.0f}")
    print(f"  own work             {per_keyport - per_raw:10,.0f}")
    print(f"  raw / keyport        {per_raw / per_keyport:10.3f}")


if __name__ == "__main__":
    main()
