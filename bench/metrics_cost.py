"""The in-process cost of metrics: recording one request on the request path, and a scrape.

    .venv/bin/python bench/metrics_cost.py

Recording: `Metrics.observe` (plain dicts, what Keyport does) against the same four updates
made with prometheus_client's own metric objects, in its default mode and in its multiprocess
mode (mmap files; the usual way to sum workers). The scrape: rendering alone, and with the
worker sharing of services/observability/metrics_sharing.py (write own snapshot, read and sum 2
workers).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from keyport.services.observability.metrics import REQUEST_SECONDS, VERIFICATION_SECONDS, Metrics
from keyport.services.observability.request_record import RequestRecord

ROUNDS = 7
BATCH = 20_000
ROUTES = ["/v4/user/me", "/v4/user", "/v4/user/{user_id}"]


def records() -> list[RequestRecord]:
    return [
        RequestRecord(
            request_id="0" * 24,
            method="GET",
            path=route,
            route=route,
            status=200,
            latency=0.0004 * (i % 7 + 1),
            client_ip="203.0.113.7",
            user_agent=None,
            key_id="k",
            acting_user_id=None,
            auth_failure=None,
            started_at=0.0,
            verification_latency=0.00002,
        )
        for i, route in enumerate(ROUTES * 10)
    ]


def per_call_us(work: object, items: list[RequestRecord]) -> float:
    assert callable(work)
    samples = []
    for _ in range(ROUNDS):
        started = time.process_time()
        for i in range(BATCH):
            work(items[i % len(items)])
        samples.append((time.process_time() - started) / BATCH)
    return statistics.median(samples) * 1e6


def prometheus_client_observer(multiprocess_dir: str | None) -> object:
    """The same four updates as Metrics.observe, with prometheus_client metric objects."""
    from prometheus_client import CollectorRegistry, Counter, Histogram, values

    if multiprocess_dir is not None:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = multiprocess_dir
        values.ValueClass = values.MultiProcessValue()
    else:
        values.ValueClass = values.MutexValue
    registry = CollectorRegistry()
    requests = Counter("r_total", "r", ("method", "route", "status"), registry=registry)
    durations = Histogram("d_seconds", "d", ("route",), buckets=REQUEST_SECONDS, registry=registry)
    auth = Counter("a_total", "a", ("outcome",), registry=registry)
    verification = Histogram("v_seconds", "v", buckets=VERIFICATION_SECONDS, registry=registry)

    def observe(record: RequestRecord) -> None:
        requests.labels(record.method, record.route, str(record.status)).inc()
        durations.labels(record.route).observe(record.latency)
        verification.observe(record.verification_latency or 0.0)
        auth.labels("success").inc()

    return observe


def scrape_ms(metrics: Metrics) -> tuple[float, float]:
    """Median wall time of a scrape, and the part of it spent on the event loop's thread."""
    wall, on_loop = [], []
    for _ in range(ROUNDS * 5):
        started, cpu = time.perf_counter(), time.thread_time()
        asyncio.run(metrics.scrape())
        wall.append(time.perf_counter() - started)
        on_loop.append(time.thread_time() - cpu)
    return statistics.median(wall) * 1e3, statistics.median(on_loop) * 1e3


def main() -> None:
    items = records()
    metrics = Metrics()
    ours = per_call_us(metrics.observe, items)
    plain = per_call_us(prometheus_client_observer(None), items)
    with tempfile.TemporaryDirectory() as folder:
        mmap = per_call_us(prometheus_client_observer(folder), items)
    print(f"record one request, Metrics.observe (dicts):          {ours:6.2f} µs")
    print(f"  same updates, prometheus_client default mode:       {plain:6.2f} µs")
    print(f"  same updates, prometheus_client multiprocess mode:  {mmap:6.2f} µs")
    wall, on_loop = scrape_ms(metrics)
    print(f"scrape, this process only:         {wall:6.2f} ms ({on_loop:.2f} ms on the loop)")
    with tempfile.TemporaryDirectory() as folder:
        other = Metrics()
        for item in items:
            other.observe(item)
        other.share_across_workers(Path(folder))
        assert other.sharing is not None
        other.sharing.publish()
        os.rename(Path(folder) / f"{os.getpid()}.json", Path(folder) / f"{os.getppid()}.json")
        metrics.share_across_workers(Path(folder))
        wall, on_loop = scrape_ms(metrics)
        print(f"scrape, whole server of 2 workers: {wall:6.2f} ms ({on_loop:.2f} ms on the loop)")


if __name__ == "__main__":
    main()
