"""The service's metrics: counted per request by `observe`, read from the rest when scraped.

With several workers (`keyport serve --workers N`) a scrape reports the whole server: see
services/observability/metrics_sharing.py. Labels are bounded: method (known verbs, else OTHER),
route
template (`unrouted` when no route matched, which includes /v4 requests refused before
routing), status code, reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from keyport.domain.auth_outcomes import AUTH_FAILURES, AuthOutcome
from keyport.services.access.cache import Caches, TtlCache
from keyport.services.observability.metrics_sharing import SharedMetrics
from keyport.services.observability.prometheus import (
    Counter,
    Family,
    GaugeMerge,
    Histogram,
    Labels,
    Reading,
    Sample,
    Series,
    Snapshot,
    exposition,
    observe_into,
)
from keyport.services.observability.request_log import RequestLog
from keyport.services.observability.request_record import RequestRecord
from keyport.services.observability.usage_flush import UsageFlusher
from keyport.services.observability.usage_recorder import UsageRecorder

UNROUTED = "unrouted"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_STATUS_LABELS = {status: str(status) for status in range(100, 600)}  # not str() per request
_MAX_LANES = 4096
REQUEST_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# A cache hit takes a few microseconds, a miss a database round trip.
VERIFICATION_SECONDS = (
    0.00001,
    0.000025,
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    1.0,
)


class Metrics:
    def __init__(self) -> None:
        self.requests = Counter(
            "keyport_http_requests_total",
            "HTTP requests answered, by route and status.",
            ("method", "route", "status"),
        )
        self.durations = Histogram(
            "keyport_http_request_duration_seconds",
            "Time from receiving a request to sending the last byte, by route.",
            REQUEST_SECONDS,
            ("route",),
        )
        self.auth = Counter(
            "keyport_api_auth_total",
            "API requests by authentication outcome: success, or why they were refused.",
            ("outcome",),
        )
        for outcome in (AuthOutcome.SUCCESS, *AUTH_FAILURES):
            self.auth.inc((outcome,), 0)
        self.verification = Histogram(
            "keyport_api_key_verification_seconds",
            "Time to verify an API key (cache hit: no I/O; miss: one database read).",
            VERIFICATION_SECONDS,
        )
        self._verifications = self.verification.series()
        self.express_lane_errors = Counter(
            "keyport_express_lane_errors_total",
            "Requests the express lane failed on (a bug, logged with its traceback); each was "
            "answered the usual way.",
        )
        self.express_lane_errors.inc((), 0)
        self._lanes: dict[tuple[str, str | None, int], tuple[Labels, Series]] = {}
        self._readings: list[Family] = []
        self.sharing: SharedMetrics | None = None

    def share_across_workers(self, directory: Path) -> SharedMetrics:
        """Report the whole server: every worker writes to and sums up `directory`."""
        self.sharing = SharedMetrics(directory, self.snapshot)
        return self.sharing

    def observe(self, record: RequestRecord) -> None:
        # A request's counter key and duration series are found once per method, route and
        # status (`_lane`), then updated in place: no labels built or looked up per request.
        lane = self._lanes.get((record.method, record.route, record.status))
        if lane is None:
            lane = self._lane(record.method, record.route, record.status)
        requests, durations = lane
        counts = self.requests.values
        counts[requests] += 1
        observe_into(self.durations.bounds, durations, record.latency)
        if record.verification_latency is not None:
            verification = self.verification
            observe_into(verification.bounds, self._verifications, record.verification_latency)
            self.auth.inc((record.auth_failure or AuthOutcome.SUCCESS,))

    def express_lane_failed(self) -> None:
        self.express_lane_errors.inc()

    def _lane(self, method: str, route: str | None, status: int) -> tuple[Labels, Series]:
        if len(self._lanes) >= _MAX_LANES:
            self._lanes.clear()  # label sets are bounded; this only bounds odd methods' keys
        label = route or UNROUTED
        requests = (
            method if method in _METHODS else "OTHER",
            label,
            _STATUS_LABELS.get(status) or str(status),
        )
        self.requests.inc(requests, 0)
        lane = self._lanes[(method, route, status)] = (requests, self.durations.series((label,)))
        return lane

    def add_reading(
        self,
        name: str,
        help_text: str,
        kind: str,
        read: Callable[[], Iterable[Sample]],
        label_names: tuple[str, ...] = (),
        merge: GaugeMerge = "sum",
    ) -> None:
        self._readings.append(Reading(name, help_text, kind, read, label_names, merge))

    def watch_caches(self, caches: Caches) -> None:
        tables: dict[str, TtlCache[Any]] = {"principal": caches.principals, "user": caches.users}
        self.add_reading(
            "keyport_cache_hits_total",
            "Request-path cache lookups answered from memory.",
            "counter",
            lambda: [((n,), c.hits) for n, c in tables.items()],
            ("cache",),
        )
        self.add_reading(
            "keyport_cache_misses_total",
            "Request-path cache lookups that read the database.",
            "counter",
            lambda: [((n,), c.misses) for n, c in tables.items()],
            ("cache",),
        )
        self.add_reading(
            "keyport_cache_entries",
            "Entries held in the request-path caches.",
            "gauge",
            lambda: [((n,), len(c)) for n, c in tables.items()],
            ("cache",),
        )

    def watch_usage(self, flusher: UsageFlusher, recorder: UsageRecorder) -> None:
        self.add_reading(
            "keyport_usage_flush_lag_seconds",
            "Age of the oldest request counted in memory and not yet written (0: none).",
            "gauge",
            lambda: [((), flusher.lag)],
            merge="max",  # the worker furthest behind
        )
        self.add_reading(
            "keyport_usage_last_flush_timestamp_seconds",
            "When usage was last written to the database (POSIX time; 0: not yet).",
            "gauge",
            lambda: [((), flusher.last_success or 0)],
            merge="min",  # the worker that wrote longest ago
        )
        self.add_reading(
            "keyport_usage_flush_failures_total",
            "Usage flushes that failed and were retried.",
            "counter",
            lambda: [((), flusher.failures)],
        )
        self.add_reading(
            "keyport_usage_written_requests_total",
            "Requests whose usage was written to the database.",
            "counter",
            lambda: [((), flusher.written_requests)],
        )
        self.add_reading(
            "keyport_usage_dropped_sightings_total",
            "Client addresses or user agents not recorded because too many were pending.",
            "counter",
            lambda: [((), recorder.dropped_sightings)],
        )

    def watch_request_log(self, log: RequestLog) -> None:
        self.add_reading(
            "keyport_request_log_dropped_total",
            "Request log lines dropped because stdout could not keep up.",
            "counter",
            lambda: [((), log.dropped)],
        )

    def snapshot(self) -> list[Snapshot]:
        families: list[Family] = [
            self.requests,
            self.durations,
            self.auth,
            self.verification,
            self.express_lane_errors,
            *self._readings,
        ]
        return [family.snapshot() for family in families]

    def render(self) -> str:
        """This process's metrics."""
        return exposition(self.snapshot())

    async def scrape(self) -> str:
        """The whole server's metrics when shared across workers, else this process's."""
        if self.sharing is None:
            return self.render()
        return exposition(await self.sharing.whole_server_now())
