"""The Prometheus text exposition format, written by hand (services.prometheus)."""

from __future__ import annotations

from keyport.services.prometheus import Counter, Histogram, Reading, exposition


def test_counters_render_one_line_per_label_set_with_escaped_values() -> None:
    counter = Counter("demo_total", "Demo requests.", ("route", "status"))
    counter.inc(("/a", "200"))
    counter.inc(("/a", "200"))
    counter.inc(('/b"\\\n', "500"), 0.5)
    assert exposition([counter]) == (
        "# HELP demo_total Demo requests.\n"
        "# TYPE demo_total counter\n"
        'demo_total{route="/a",status="200"} 2\n'
        'demo_total{route="/b\\"\\\\\\n",status="500"} 0.5\n'
    )


def test_histogram_buckets_are_cumulative_and_a_bound_is_inclusive() -> None:
    histogram = Histogram("demo_seconds", "Demo latency.", (0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 3.0):
        histogram.observe(value)
    assert exposition([histogram]) == (
        "# HELP demo_seconds Demo latency.\n"
        "# TYPE demo_seconds histogram\n"
        'demo_seconds_bucket{le="0.1"} 2\n'
        'demo_seconds_bucket{le="1"} 3\n'
        'demo_seconds_bucket{le="+Inf"} 4\n'
        "demo_seconds_sum 3.65\n"
        "demo_seconds_count 4\n"
    )


def test_readings_are_taken_when_scraped() -> None:
    state = {"lag": 1.5}
    reading = Reading("demo_lag_seconds", "Demo lag.", "gauge", lambda: [((), state["lag"])])
    state["lag"] = 0
    assert exposition([reading]).splitlines()[-1] == "demo_lag_seconds 0"
