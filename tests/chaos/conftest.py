"""The short cluster run's report in the test output (before pytest's closing line): the
run's figures and its violations, all zero, in every CI log."""

from __future__ import annotations

from typing import Any

REPORTS: list[str] = []  # tests/chaos/test_cluster.py adds its report here


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for report in REPORTS:
        terminalreporter.section("cluster run (tests/chaos)")
        terminalreporter.write_line(report)
