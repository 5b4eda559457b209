"""Counters, histograms and readings counted in plain dicts, written out by prometheus_client.

The request path only increments dicts (no locks: everything runs on one event loop), which
costs less than prometheus_client's own metric objects (bench/metrics_cost.py). When scraped,
each family becomes a `Snapshot`: plain data that can be stored, read back by another worker
and summed (services/observability/metrics_sharing.py); prometheus_client turns the merged
snapshots into the
text exposition format. Label values must come from bounded sets (route templates, status
codes, reasons) — never a raw path or a key id.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Literal, Protocol

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString

MEDIA_TYPE = "text/plain; version=0.0.4"  # the framework adds "; charset=utf-8"
Labels = tuple[str, ...]
Sample = tuple[Labels, float]
# How a gauge of several workers is summed up: cache entries add up, a lag is the worst one.
GaugeMerge = Literal["sum", "max", "min"]
# JSON-friendly: {"name", "help", "kind", "labels", "samples", ["bounds"], ["merge"]}.
Snapshot = dict[str, Any]


class Family(Protocol):
    def snapshot(self) -> Snapshot: ...


class Counter:
    def __init__(self, name: str, help_text: str, label_names: Labels = ()) -> None:
        self.name, self.help, self.label_names = name, help_text, label_names
        self.values: dict[Labels, float] = {}

    def inc(self, labels: Labels = (), amount: float = 1) -> None:
        self.values[labels] = self.values.get(labels, 0) + amount

    def value(self, labels: Labels = ()) -> float:
        return self.values.get(labels, 0)

    def snapshot(self) -> Snapshot:
        samples = [[list(labels), value] for labels, value in self.values.items()]
        return _snapshot(self.name, self.help, "counter", self.label_names, samples)


# A histogram's series: counts per bucket (not cumulative; the last is +Inf), and [sum, count].
Series = tuple[list[int], list[float]]


def observe_into(bounds: tuple[float, ...], series: Series, value: float) -> None:
    series[0][bisect_left(bounds, value)] += 1
    totals = series[1]
    totals[0] += value
    totals[1] += 1


class Histogram:
    def __init__(
        self, name: str, help_text: str, bounds: Sequence[float], label_names: Labels = ()
    ) -> None:
        self.name, self.help, self.label_names = name, help_text, label_names
        self.bounds = tuple(bounds)
        # Per label set: counts per bucket (not cumulative; the last is +Inf), sum, count.
        self._series: dict[Labels, Series] = {}

    def observe(self, value: float, labels: Labels = ()) -> None:
        observe_into(self.bounds, self.series(labels), value)

    def series(self, labels: Labels = ()) -> Series:
        """The series of these labels (made empty if new), for a caller that observes into it
        directly (`observe_into`) many times."""
        series = self._series.get(labels)
        if series is None:
            series = self._series[labels] = ([0] * (len(self.bounds) + 1), [0.0, 0.0])
        return series

    def count(self, labels: Labels = ()) -> int:
        series = self._series.get(labels)
        return int(series[1][1]) if series else 0

    def snapshot(self) -> Snapshot:
        samples = [
            [list(labels), list(counts), total, count]
            for labels, (counts, (total, count)) in self._series.items()
        ]
        found = _snapshot(self.name, self.help, "histogram", self.label_names, samples)
        found["bounds"] = list(self.bounds)
        return found


class Reading:
    """A counter or gauge whose samples are read when scraped (cache hits, flush lag)."""

    def __init__(
        self,
        name: str,
        help_text: str,
        kind: str,
        read: Callable[[], Iterable[Sample]],
        label_names: Labels = (),
        merge: GaugeMerge = "sum",
    ) -> None:
        self.name, self.help, self.kind = name, help_text, kind
        self.label_names = label_names
        self.merge = merge
        self._read = read

    def snapshot(self) -> Snapshot:
        samples = [[list(labels), value] for labels, value in self._read()]
        found = _snapshot(self.name, self.help, self.kind, self.label_names, samples)
        found["merge"] = self.merge
        return found


def _snapshot(
    name: str, help_text: str, kind: str, label_names: Labels, samples: list[Any]
) -> Snapshot:
    return {
        "name": name,
        "help": help_text,
        "kind": kind,
        "labels": list(label_names),
        "samples": samples,
    }


def merge(processes: Sequence[Sequence[Snapshot]], live: Sequence[bool]) -> list[Snapshot]:
    """Several processes' snapshots as one: counters and histograms add up over every process
    that ever answered (a restarted worker's counts stay counted); gauges over live ones."""
    merged: dict[str, Snapshot] = {}
    for snapshots, alive in zip(processes, live, strict=True):
        for family in snapshots:
            if family["kind"] == "gauge" and not alive:
                continue
            into = merged.setdefault(family["name"], {**family, "samples": []})
            into["samples"].append(family["samples"])
    return [_combine(family) for family in merged.values()]


def _combine(family: Snapshot) -> Snapshot:
    by_labels: dict[tuple[str, ...], Any] = {}
    for samples in family["samples"]:
        for sample in samples:
            labels = tuple(sample[0])
            known = by_labels.get(labels)
            if known is None:
                by_labels[labels] = [sample[0], *sample[1:]]
            elif family["kind"] == "histogram":
                known[1] = [a + b for a, b in zip(known[1], sample[1], strict=True)]
                known[2] += sample[2]
                known[3] += sample[3]
            elif family["kind"] == "gauge" and family.get("merge") in ("max", "min"):
                pick = max if family["merge"] == "max" else min
                known[1] = pick(known[1], sample[1])
            else:
                known[1] += sample[1]
    return {**family, "samples": list(by_labels.values())}


class _Families(Collector):
    def __init__(self, families: Sequence[Snapshot]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        for family in self._families:
            yield _metric(family)


def _metric(family: Snapshot) -> Metric:
    name, help_text, labels = family["name"], family["help"], family["labels"]
    samples = sorted(family["samples"], key=lambda sample: sample[0])
    if family["kind"] == "histogram":
        histogram = HistogramMetricFamily(name, help_text, labels=labels)
        bounds = [_go_float(b) for b in (*family["bounds"], float("inf"))]
        for values, counts, total, _count in samples:
            cumulative, buckets = 0, []
            for bound, in_bucket in zip(bounds, counts, strict=True):
                cumulative += in_bucket
                buckets.append((bound, cumulative))
            histogram.add_metric(values, buckets, total)
        return histogram
    kind = CounterMetricFamily if family["kind"] == "counter" else GaugeMetricFamily
    metric = kind(name, help_text, labels=labels)
    for values, value in samples:
        metric.add_metric(values, value)
    return metric


def _go_float(value: float) -> str:
    """A bucket bound as Prometheus writes it (`0.5`, `1.0`, `+Inf`)."""
    text: str = floatToGoString(value)  # type: ignore[no-untyped-call]
    return text


def exposition(families: Sequence[Snapshot]) -> str:
    """The Prometheus text format (0.0.4), written by prometheus_client."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    return generate_latest(registry).decode()
