"""Metrics counted in dicts, merged across processes, written by prometheus_client."""

from __future__ import annotations

import os
from pathlib import Path

from keyport.services.observability.metrics_sharing import SharedMetrics
from keyport.services.observability.prometheus import (
    Counter,
    Histogram,
    Reading,
    Snapshot,
    exposition,
    merge,
)

NO_SUCH_PID = 2**22 + 12345  # above Linux's pid_max: never a live process


def test_counters_render_one_line_per_label_set_with_escaped_values() -> None:
    counter = Counter("demo_total", "Demo requests.", ("route", "status"))
    counter.inc(("/a", "200"))
    counter.inc(("/a", "200"))
    counter.inc(('/b"\\\n', "500"), 0.5)
    assert exposition([counter.snapshot()]) == (
        "# HELP demo_total Demo requests.\n"
        "# TYPE demo_total counter\n"
        'demo_total{route="/a",status="200"} 2.0\n'
        'demo_total{route="/b\\"\\\\\\n",status="500"} 0.5\n'
    )


def test_histogram_buckets_are_cumulative_and_a_bound_is_inclusive() -> None:
    histogram = Histogram("demo_seconds", "Demo latency.", (0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 3.0):
        histogram.observe(value)
    assert exposition([histogram.snapshot()]) == (
        "# HELP demo_seconds Demo latency.\n"
        "# TYPE demo_seconds histogram\n"
        'demo_seconds_bucket{le="0.1"} 2.0\n'
        'demo_seconds_bucket{le="1.0"} 3.0\n'
        'demo_seconds_bucket{le="+Inf"} 4.0\n'
        "demo_seconds_count 4.0\n"
        "demo_seconds_sum 3.65\n"
    )


def test_readings_are_taken_when_scraped() -> None:
    state = {"lag": 1.5}
    reading = Reading("demo_lag_seconds", "Demo lag.", "gauge", lambda: [((), state["lag"])])
    state["lag"] = 0
    assert exposition([reading.snapshot()]).splitlines()[-1] == "demo_lag_seconds 0.0"


def _worker(requests: int, lag: float, entries: int) -> list[Snapshot]:
    counter = Counter("demo_total", "Demo.", ("route",))
    counter.inc(("/a",), requests)
    histogram = Histogram("demo_seconds", "Demo.", (0.1,))
    for _ in range(requests):
        histogram.observe(0.05)
    return [
        counter.snapshot(),
        histogram.snapshot(),
        Reading("demo_lag", "Lag.", "gauge", lambda: [((), lag)], merge="max").snapshot(),
        Reading("demo_entries", "Entries.", "gauge", lambda: [((), entries)]).snapshot(),
    ]


def test_workers_add_up_counters_and_histograms_and_live_gauges_by_their_rule() -> None:
    merged = merge(
        [_worker(2, 0.5, 10), _worker(3, 2.0, 5), _worker(7, 9.0, 100)], live=[True, True, False]
    )
    lines = exposition(merged).splitlines()
    assert 'demo_total{route="/a"} 12.0' in lines  # a stopped worker's counts still count
    assert 'demo_seconds_bucket{le="0.1"} 12.0' in lines
    assert "demo_seconds_count 12.0" in lines
    assert "demo_lag 2.0" in lines  # the worst of the live workers
    assert "demo_entries 15.0" in lines  # the live workers' sum


def test_a_scrape_of_one_worker_reports_every_worker_of_the_run(tmp_path: Path) -> None:
    counts = {"mine": 1, "other": 4, "gone": 10}

    def sharing(name: str, pid: int) -> SharedMetrics:
        counter = Reading("demo_total", "Demo.", "counter", lambda: [((), counts[name])])
        return SharedMetrics(tmp_path, lambda: [counter.snapshot()], pid=pid)

    sharing("other", os.getppid()).publish()
    sharing("gone", NO_SUCH_PID).publish()
    mine = sharing("mine", os.getpid())
    assert "demo_total 15.0" in exposition(mine.whole_server()).splitlines()
    counts["mine"] = 2  # the scraped worker's own count is always fresh
    assert "demo_total 16.0" in exposition(mine.whole_server()).splitlines()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"{pid}.json" for pid in (os.getpid(), os.getppid(), NO_SUCH_PID)
    )
