"""The short cluster run (about 70 s): three hosts behind nginx on a PostgreSQL and a Redis of
the test's own, every fault kind once — kill -9 and restart a host, pause a host for 5 s,
restart Redis empty, cut the pub/sub invalidation channel for 6 s, stop PostgreSQL for 10 s —
under mixed traffic, and every invariant of tests/chaos/invariants.py at zero.

The seed picks which hosts are killed and paused; KEYPORT_CHAOS_SEED replays one. The long run
with random faults is `bench/cluster.py`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.chaos.faults import short_schedule
from tests.chaos.run import run

pytestmark = pytest.mark.slow

TRAFFIC_SECONDS = 45.0  # the schedule's last fault is undone at ~44 s; traffic goes on 5 s more


def test_a_cluster_under_every_kind_of_fault_keeps_every_promise(
    tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    for program in ("nginx", "psql", "redis-server"):
        if shutil.which(program) is None and not Path(f"/usr/sbin/{program}").exists():
            if os.environ.get("CI"):
                pytest.fail(f"{program} is needed for the cluster run")
            pytest.skip(f"{program} is not installed")
    seed = int(os.environ.get("KEYPORT_CHAOS_SEED", "1"))
    report = run(TRAFFIC_SECONDS, seed, short_schedule(seed), tmp_path)
    # Printed at the end of the test run (tests/conftest.py), also from a pytest-xdist worker.
    record_property("report: cluster run (tests/chaos)", report.text())
    assert report.clean, report.text()
    assert report.requests > 1000 and report.changes > 10 and len(report.faults) == 10
