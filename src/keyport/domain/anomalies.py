"""What counts as unusual activity for an API key, judged against the key's own history.

Three signals, each over the last 24 hours:
- a client address or user agent never seen before: first seen in the window, while the key
  had already been used from another one (a key's very first client is not news);
- a spike: an hour with more than SPIKE_FACTOR times the key's typical busiest hour, where
  "typical busiest hour" is the median, over the earlier whole days of the window, of each
  day's busiest hour. Keys that run a nightly batch have a busy hour every day and are not
  flagged for it; a key that was quiet and suddenly is, is. Needs one earlier whole day;
- a burst of failures: an hour with at least FAILURE_MIN failed requests (4xx and 5xx) that
  make up at least FAILURE_SHARE of that hour's requests.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from keyport.domain.usage import IP, Bucket, Sighting

WINDOW = timedelta(hours=24)
SPIKE_FACTOR = 3
SPIKE_MIN = 20  # requests in an hour below which nothing is a spike
FAILURE_MIN = 10
FAILURE_SHARE = 0.5


class AlertKind(StrEnum):
    NEW_IP = "new-ip"
    NEW_AGENT = "new-agent"
    SPIKE = "spike"
    FAILURES = "failures"


@dataclass(frozen=True, slots=True)
class Alert:
    kind: AlertKind
    at: datetime  # when it started: first seen, or the start of the hour
    subject: str  # the address, the user agent, or a count in words
    detail: str


def new_sightings(
    sightings: Sequence[Sighting], earliest_first_seen: datetime | None, now: datetime
) -> list[Alert]:
    """Sightings first seen in the last 24 h that a key's earlier clients make news.

    `sightings` are those first seen in the window (any order); `earliest_first_seen` is the
    earliest first sighting of the same kind the key has at all.
    """
    if earliest_first_seen is None:
        return []
    alerts = []
    for sighting in sorted(sightings, key=lambda s: s.first_seen):
        if sighting.first_seen < now - WINDOW or sighting.first_seen <= earliest_first_seen:
            continue
        kind = AlertKind.NEW_IP if sighting.kind == IP else AlertKind.NEW_AGENT
        noun = "An address" if sighting.kind == IP else "A user agent"
        alerts.append(
            Alert(
                kind,
                sighting.first_seen,
                sighting.value,
                f"{noun} this key had never been used from before; "
                f"{_requests(sighting.requests)} since.",
            )
        )
    return alerts


def spike(hours: Sequence[Bucket], created_at: datetime, now: datetime) -> Alert | None:
    """The busiest recent hour if it is well above the key's typical busiest hour."""
    recent = [b for b in hours if b.start > now - WINDOW]
    if not recent:
        return None
    peak = max(recent, key=lambda b: b.total)
    typical = typical_busiest_hour(hours, created_at, now)
    if typical is None or peak.total < max(SPIKE_MIN, SPIKE_FACTOR * typical + 1):
        return None
    return Alert(
        AlertKind.SPIKE,
        peak.start,
        _requests(peak.total),
        f"{_requests(peak.total)} in one hour; this key's busiest hour is usually "
        f"about {typical:g}.",
    )


def typical_busiest_hour(
    hours: Sequence[Bucket], created_at: datetime, now: datetime
) -> float | None:
    """Median of each earlier whole day's busiest hour; None without one whole earlier day."""
    hour = timedelta(hours=1)
    earlier = [b for b in hours if b.start <= now - WINDOW and b.start + hour > created_at]
    whole_days = len(earlier) // 24
    if whole_days == 0:
        return None
    newest_first = list(reversed(earlier))
    peaks = [max(b.total for b in newest_first[d * 24 : d * 24 + 24]) for d in range(whole_days)]
    return float(statistics.median(peaks))


def failure_burst(hours: Sequence[Bucket], now: datetime) -> Alert | None:
    """The recent hour with the most failures, if they were many and most of its requests."""
    bursts = [
        b
        for b in hours
        if b.start > now - WINDOW
        and b.failures >= FAILURE_MIN
        and b.failures >= FAILURE_SHARE * b.total
    ]
    if not bursts:
        return None
    worst = max(bursts, key=lambda b: b.failures)
    return Alert(
        AlertKind.FAILURES,
        worst.start,
        _requests(worst.failures),
        f"{worst.failures} of {_requests(worst.total)} in one hour failed "
        f"({worst.client_error} client errors, {worst.server_error} server errors).",
    )


def _requests(count: int) -> str:
    return f"{count} request" if count == 1 else f"{count} requests"
