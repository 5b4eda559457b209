"""docs/deployment.md ships the load balancer the cluster run uses: the two stay equal."""

from __future__ import annotations

import re
from pathlib import Path

from tests.chaos.cluster import load_balancer_config

DOC = Path(__file__).resolve().parents[2] / "docs" / "deployment.md"


def test_the_documented_load_balancer_is_the_one_the_cluster_run_uses() -> None:
    found = re.search(r"```nginx\n(.*?)```", DOC.read_text(), re.S)
    assert found is not None, "docs/deployment.md has no nginx block"
    hosts = ["10.0.0.11:8000", "10.0.0.12:8000", "10.0.0.13:8000"]
    assert found.group(1) == load_balancer_config("0.0.0.0:80", hosts)
