"""The long cluster run: three Keyport hosts behind nginx on a PostgreSQL and a Redis of the
run's own, random faults of every kind (seeded, printed) for ten minutes or more, and every
invariant of tests/chaos/invariants.py counted. docs/operations.md "Tested guarantees" quotes
its last report.

    .venv/bin/python -m bench.cluster --seconds 600 --seed 20261208

(from the repository root). Exit status 1 when any invariant was violated.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from tests.chaos.faults import random_schedule
from tests.chaos.run import run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="traffic time (600)")
    parser.add_argument("--seed", type=int, default=int(time.time()) % 1_000_000)
    parser.add_argument(
        "--steady", type=float, default=30.0, help="seconds measured after the faults (30)"
    )
    parser.add_argument("--keep", type=Path, help="a new folder to keep the hosts' logs in")
    options = parser.parse_args()
    schedule = random_schedule(options.seed, options.seconds)
    print(f"seed {options.seed}; {len(schedule)} faults scheduled:", flush=True)
    for fault in schedule:
        print(f"  {fault.describe()}", flush=True)
    if options.keep:
        options.keep.mkdir(parents=True)
        report = run(options.seconds, options.seed, schedule, options.keep, steady=options.steady)
    else:
        with tempfile.TemporaryDirectory(prefix="keyport-cluster-") as folder:
            report = run(
                options.seconds, options.seed, schedule, Path(folder), steady=options.steady
            )
    print(report.text())
    raise SystemExit(0 if report.clean else 1)


if __name__ == "__main__":
    main()
