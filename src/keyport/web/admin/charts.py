"""Usage charts as inline SVG geometry: stacked bars by status class, and sparklines.

Only numbers and class names reach the template; the CSP allows inline SVG but no inline
style, so colours come from admin.css through the classes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from keyport.domain.usage import Bucket

SEGMENTS = (  # bottom to top: (attribute of Bucket, css class, words)
    ("success", "ok", "successful"),
    ("client_error", "client", "client errors"),
    ("server_error", "server", "server errors"),
)


@dataclass(frozen=True, slots=True)
class Segment:
    y: float
    height: float
    kind: str  # ok, client or server


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    width: float
    segments: Sequence[Segment]
    title: str  # the tooltip: when and how many of each


@dataclass(frozen=True, slots=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True, slots=True)
class Chart:
    width: int
    height: int
    plot_top: float
    plot_bottom: float
    plot_left: float
    plot_right: float
    bars: Sequence[Bar]
    y_ticks: Sequence[Tick]
    x_ticks: Sequence[Tick]
    total: int


def nice_ceiling(value: int) -> int:
    """The chart's top: four gridlines apart by a round whole number (1, 2, 2.5 or 5 times a
    power of ten), together at or above value."""
    needed = max(value / 4, 1.0)
    magnitude = 10 ** math.floor(math.log10(needed))
    for multiple in (1, 2, 2.5, 5, 10):
        step = multiple * magnitude
        if step >= needed and float(step).is_integer():
            return int(step) * 4
    return int(10 * magnitude) * 4


def stacked_bars(
    buckets: Sequence[Bucket],
    *,
    describe: Callable[[Bucket], str],
    tick_label: Callable[[int, Bucket], str | None],
    width: int = 760,
    height: int = 220,
) -> Chart:
    left, right, top, bottom = 44.0, width - 8.0, 10.0, height - 26.0
    ceiling = nice_ceiling(max((b.total for b in buckets), default=0))
    slot = (right - left) / max(len(buckets), 1)
    gap = min(slot * 0.2, 4.0) if slot >= 3 else 0.0
    bars, x_ticks = [], []
    for index, bucket in enumerate(buckets):
        x = left + index * slot
        bars.append(
            Bar(
                round(x + gap / 2, 2),
                round(slot - gap, 2),
                _segments(bucket, ceiling, top, bottom),
                _title(bucket, describe),
            )
        )
        label = tick_label(index, bucket)
        if label is not None:
            x_ticks.append(Tick(round(x + slot / 2, 2), label))
    y_ticks = [
        Tick(round(bottom - (bottom - top) * n / 4, 2), _compact(ceiling * n // 4))
        for n in range(5)
    ]
    return Chart(
        width,
        height,
        top,
        bottom,
        left,
        right,
        bars,
        y_ticks,
        x_ticks,
        sum(b.total for b in buckets),
    )


def _segments(bucket: Bucket, ceiling: int, top: float, bottom: float) -> list[Segment]:
    scale = (bottom - top) / ceiling
    y = bottom
    segments = []
    for attribute, kind, _ in SEGMENTS:
        count = getattr(bucket, attribute)
        if count:
            height = count * scale
            y -= height
            segments.append(Segment(round(y, 2), round(height, 2), kind))
    return segments


def _title(bucket: Bucket, describe: Callable[[Bucket], str]) -> str:
    parts = [f"{getattr(bucket, a)} {words}" for a, _, words in SEGMENTS if getattr(bucket, a)]
    counts = ", ".join(parts) if parts else "no requests"
    return f"{describe(bucket)}: {counts}"


def _compact(value: int) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if value >= 1000:
        return f"{value / 1000:g}k"
    return str(value)


@dataclass(frozen=True, slots=True)
class Sparkline:
    width: int
    height: int
    bars: Sequence[Bar]
    total: int
    title: str


def sparkline(days: Sequence[Bucket], *, width: int = 84, height: int = 24) -> Sparkline:
    """Tiny bars, one per day; failures on top in their own colour."""
    ceiling = max((d.total for d in days), default=0) or 1
    slot = width / max(len(days), 1)
    bars = []
    for index, day in enumerate(days):
        segments = (
            _segments(day, ceiling, 2.0, float(height))
            if day.total
            else [Segment(height - 1.0, 1.0, "none")]
        )
        bars.append(
            Bar(
                round(index * slot + 0.5, 2),
                round(slot - 1.5, 2),
                segments,
                f"{day.start:%d %b}: {day.total}",
            )
        )
    total = sum(d.total for d in days)
    return Sparkline(width, height, bars, total, f"{total} requests in the last {len(days)} days")
