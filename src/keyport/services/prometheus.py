"""Counters, histograms and gauges in the Prometheus text exposition format (version 0.0.4).

Written by hand rather than with prometheus-client: the request path only increments plain
dicts (no locks; everything runs on one event loop), and the text is made when scraped.
Label values must come from bounded sets (route templates, status codes, reasons) — never a
raw path or a key id.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

MEDIA_TYPE = "text/plain; version=0.0.4"  # the framework adds "; charset=utf-8"
Labels = tuple[str, ...]
Sample = tuple[Labels, float]


class Family(Protocol):
    def render(self) -> Iterable[str]: ...


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: Sequence[str]) -> str:
    if not names:
        return ""
    pairs = ",".join(f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True))
    return "{" + pairs + "}"


def _number(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _header(name: str, help_text: str, kind: str) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]


class Counter:
    def __init__(self, name: str, help_text: str, label_names: Labels = ()) -> None:
        self.name, self.help, self.label_names = name, help_text, label_names
        self.values: dict[Labels, float] = {}

    def inc(self, labels: Labels = (), amount: float = 1) -> None:
        self.values[labels] = self.values.get(labels, 0) + amount

    def value(self, labels: Labels = ()) -> float:
        return self.values.get(labels, 0)

    def render(self) -> Iterable[str]:
        lines = _header(self.name, self.help, "counter")
        for labels, value in sorted(self.values.items()):
            lines.append(f"{self.name}{_labels(self.label_names, labels)} {_number(value)}")
        return lines


class Histogram:
    def __init__(
        self, name: str, help_text: str, bounds: Sequence[float], label_names: Labels = ()
    ) -> None:
        self.name, self.help, self.label_names = name, help_text, label_names
        self.bounds = tuple(bounds)
        # Per label set: counts per bucket (not cumulative; the last is +Inf), sum, count.
        self._series: dict[Labels, tuple[list[int], list[float]]] = {}

    def observe(self, value: float, labels: Labels = ()) -> None:
        series = self._series.get(labels)
        if series is None:
            series = self._series[labels] = ([0] * (len(self.bounds) + 1), [0.0, 0.0])
        series[0][bisect_left(self.bounds, value)] += 1
        totals = series[1]
        totals[0] += value
        totals[1] += 1

    def count(self, labels: Labels = ()) -> int:
        series = self._series.get(labels)
        return int(series[1][1]) if series else 0

    def render(self) -> Iterable[str]:
        lines = _header(self.name, self.help, "histogram")
        names = (*self.label_names, "le")
        for labels, (counts, (total, count)) in sorted(self._series.items()):
            cumulative = 0
            for bound, in_bucket in zip((*self.bounds, float("inf")), counts, strict=True):
                cumulative += in_bucket
                bucket_labels = _labels(names, (*labels, _number(bound)))
                lines.append(f"{self.name}_bucket{bucket_labels} {cumulative}")
            own = _labels(self.label_names, labels)
            lines.append(f"{self.name}_sum{own} {_number(total)}")
            lines.append(f"{self.name}_count{own} {_number(count)}")
        return lines


class Reading:
    """A counter or gauge whose samples are read when scraped (cache hits, flush lag)."""

    def __init__(
        self,
        name: str,
        help_text: str,
        kind: str,
        read: Callable[[], Iterable[Sample]],
        label_names: Labels = (),
    ) -> None:
        self.name, self.help, self.kind = name, help_text, kind
        self.label_names = label_names
        self._read = read

    def render(self) -> Iterable[str]:
        lines = _header(self.name, self.help, self.kind)
        for labels, value in self._read():
            lines.append(f"{self.name}{_labels(self.label_names, labels)} {_number(value)}")
        return lines


def exposition(families: Iterable[Family]) -> str:
    return "\n".join(line for family in families for line in family.render()) + "\n"
