"""API key usage: status classes, time buckets and the records a key's usage is made of.

Usage is counted per key and per minute, where a minute is an integer: whole minutes since
the Unix epoch (UTC). Integers group into hours (`// 60`) and days the same way on every
database, so charts need no date functions that differ between SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import NamedTuple

from keyport.domain.auth_outcomes import KEY_STATE_REFUSALS
from keyport.domain.named_tuples import tuple_new

MINUTES_PER_HOUR = 60
SUCCESS, CLIENT_ERROR, SERVER_ERROR = 0, 1, 2  # index into a bucket's counts
IP, AGENT = "ip", "agent"  # the two kinds of sighting
MAX_AGENT_LENGTH = 256
MAX_PATH_LENGTH = 256
STALE_AFTER = timedelta(days=30)  # a usable key unused this long is probably forgotten
# A key in any case (`AK_LIVE:`, `Ak_Live%3A`), and the bare `<key-id>:<secret>` a client may
# send without the prefix: the secret goes, the public key id may stay.
_COLON = r"(?::|%3a)"
_KEY_LIKE = re.compile(
    rf"(?P<prefixed>ak_live{_COLON}\S*)"
    rf"|(?P<key_id>[0-9a-f]{{8}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{12}})"
    rf"{_COLON}[0-9a-z]{{8,}}",
    re.IGNORECASE,
)


def _redacted(match: re.Match[str]) -> str:
    if match.group("prefixed") is not None:
        return "ak_live:[redacted]"
    return f"{match.group('key_id')}:[redacted]"


def status_class(status: int) -> int:
    """SUCCESS for 1xx-3xx, CLIENT_ERROR for 4xx, SERVER_ERROR for 5xx."""
    if status >= 500:
        return SERVER_ERROR
    return CLIENT_ERROR if status >= 400 else SUCCESS


def minute_of(posix_seconds: float) -> int:
    return int(posix_seconds // 60)


def hour_of(moment: datetime) -> int:
    """Whole hours since the epoch: the index hourly buckets use."""
    return int(moment.timestamp() // 3600)


def hour_start(hour: int) -> datetime:
    return datetime.fromtimestamp(hour * 3600, UTC)


def is_stale(last_used_at: datetime | None, created_at: datetime, now: datetime) -> bool:
    """Unused for STALE_AFTER: never used since creation, or not since it was last used."""
    return (last_used_at or created_at) <= now - STALE_AFTER


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INVITATION_TOKEN = re.compile(r"(/invite/)[^/?#\s]+")


def without_keys(text: str, limit: int) -> str:
    """Text safe to store and show: anything shaped like a key is cut out, length bounded.

    Clients sometimes paste a key where it does not belong (a path, a user agent); the
    secret must still never reach the database or a log.
    """
    if ":" in text or "%" in text:  # most paths and agents have neither: skip the regex
        text = _KEY_LIKE.sub(_redacted, text)
    if "/invite/" in text:  # an invitation link's token is a credential too
        text = _INVITATION_TOKEN.sub(r"\1[redacted]", text)
    return text[:limit]


# The rows of a usage flush are NamedTuples: immutable, built by the thousand a second with
# many keys, and cheaper to build than frozen dataclasses (about a third of the time).
class MinuteCount(NamedTuple):
    key_id: str
    minute: int
    success: int
    client_error: int
    server_error: int


def minute_count(
    key_id: str, minute: int, success: int, client_error: int, server_error: int
) -> MinuteCount:
    """`MinuteCount(...)` at a third of the cost (domain/named_tuples.py)."""
    return tuple_new(MinuteCount, (key_id, minute, success, client_error, server_error))


class RecentRequest(NamedTuple):
    """One request made with a key, as the key's detail page lists it."""

    key_id: str
    at: datetime
    request_id: str
    method: str
    path: str
    route: str | None
    status: int
    latency_ms: float
    client_ip: str | None
    user_agent: str | None
    acting_user_id: str | None
    refusal: str | None  # an AuthOutcome: why it was refused before its route ran, if it was

    @property
    def key_was_usable(self) -> bool:
        return self.refusal not in KEY_STATE_REFUSALS

    @classmethod
    def of_entry(cls, key_id: str, entry: RecentEntry) -> RecentRequest:
        at_us, request_id, method, path, route, status, latency_ms, ip, agent, user, refusal = entry
        at = _EPOCH + timedelta(microseconds=at_us)  # exact, as the entry was made
        return cls(
            key_id,
            at,
            request_id,
            method,
            path,
            route,
            status,
            latency_ms,
            ip,
            agent,
            user,
            refusal,
        )


# A request of a key's ring as it is stored: RecentRequest's fields after the key id, its
# moment in whole microseconds since the epoch. With many keys every request becomes one, so
# it is a plain tuple of numbers and strings: no datetime, cheap to build and to encode.
RecentEntry = tuple[
    int, str, str, str, str | None, int, float, str | None, str | None, str | None, str | None
]


class RecentRequests(NamedTuple):
    """A key's requests that one usage flush hands over, oldest first: the newest part of its
    ring of recent requests, stored as one row (db/usage_store.py), already encoded as it is
    stored: a JSON array of RecentEntry arrays (services/observability/usage_recorder.py)."""

    key_id: str
    requests: int  # entries in `entries`
    entries: bytes


def recent_requests(key_id: str, requests: int, entries: bytes) -> RecentRequests:
    """`RecentRequests(...)` at a third of the cost (domain/named_tuples.py)."""
    return tuple_new(RecentRequests, (key_id, requests, entries))


class Sighting(NamedTuple):
    """A client address or user agent a key was used from, and when."""

    key_id: str
    kind: str  # IP or AGENT
    value: str
    first_seen: datetime
    last_seen: datetime
    requests: int


class LastUse(NamedTuple):
    key_id: str
    at: datetime
    ip: str | None


@dataclass(frozen=True, slots=True)
class Bucket:
    """Requests in one hour or day, by status class."""

    start: datetime
    success: int = 0
    client_error: int = 0
    server_error: int = 0

    @property
    def total(self) -> int:
        return self.success + self.client_error + self.server_error

    @property
    def failures(self) -> int:
        return self.client_error + self.server_error


HourRow = tuple[int, int, int, int]  # (hour, success, client_error, server_error)


def hourly_series(rows: Iterable[HourRow], first_hour: int, last_hour: int) -> list[Bucket]:
    """One bucket per hour from first_hour to last_hour inclusive; hours without rows are 0."""
    by_hour = {hour: (s, c, e) for hour, s, c, e in rows}
    return [
        Bucket(hour_start(hour), *by_hour.get(hour, (0, 0, 0)))
        for hour in range(first_hour, last_hour + 1)
    ]


def daily_series(hours: Sequence[Bucket], zone: tzinfo, last_day: date, days: int) -> list[Bucket]:
    """Hourly buckets summed into the viewer's calendar days, the last `days` up to last_day.

    An hour belongs to the local day it starts in (exact for whole-hour UTC offsets).
    """
    first_day = last_day - timedelta(days=days - 1)
    sums: dict[date, list[int]] = {first_day + timedelta(days=n): [0, 0, 0] for n in range(days)}
    for bucket in hours:
        counts = sums.get(bucket.start.astimezone(zone).date())
        if counts is not None:
            counts[SUCCESS] += bucket.success
            counts[CLIENT_ERROR] += bucket.client_error
            counts[SERVER_ERROR] += bucket.server_error
    return [
        Bucket(datetime(day.year, day.month, day.day, tzinfo=zone), *counts)
        for day, counts in sums.items()
    ]
