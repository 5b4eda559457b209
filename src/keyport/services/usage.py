"""Recording API key usage in memory, to be written in batches by the UsageFlusher.

`observe` runs on the request path for every request, so it only touches dicts: per key and
minute a count by status class, a bounded ring of the key's newest requests, the client
addresses and user agents seen, and the key's last use. `drain` hands all of it over as one
UsageBatch; a batch that could not be written is given back with `restore` and retried.

`last_used_at` is written at most once a minute per key (the newest value is kept in memory
and written when a minute has passed since the previous write, and at shutdown).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from keyport.domain.auth_outcomes import KEY_STATE_REFUSALS
from keyport.domain.usage import (
    AGENT,
    IP,
    MAX_AGENT_LENGTH,
    MAX_PATH_LENGTH,
    LastUse,
    MinuteCount,
    RecentRequest,
    Sighting,
    status_class,
    without_keys,
)
from keyport.services.requests import RequestRecord

RING_SIZE = 100  # newest requests kept per key, in memory and in the database
LAST_USED_EVERY = 60.0  # seconds between two last_used_at writes of one key
MAX_PENDING_SIGHTINGS = 20_000  # distinct (key, address or agent) pairs held between flushes
COUNT_RETENTION = timedelta(days=15)  # the dashboard charts 14 days
SIGHTING_RETENTION = timedelta(days=90)  # an address unseen this long is new again

SightingKey = tuple[str, str, str]  # (key id, kind, value)


@dataclass
class UsageBatch:
    counts: list[MinuteCount] = field(default_factory=list)
    recent: list[RecentRequest] = field(default_factory=list)
    sightings: list[Sighting] = field(default_factory=list)
    last_uses: list[LastUse] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.counts or self.recent or self.sightings or self.last_uses)

    @property
    def requests(self) -> int:
        return sum(c.success + c.client_error + c.server_error for c in self.counts)


class UsageStore(Protocol):
    async def write(self, batch: UsageBatch) -> None:
        """Everything in the batch, in one transaction: all of it is written or none."""
        ...

    async def prune(self, counts_before_minute: int, sightings_before: datetime) -> None:
        """Drop minute counts and sightings older than these."""
        ...

    async def close(self) -> None: ...


class UsageRecorder:
    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self._counts: dict[tuple[str, int], list[int]] = {}
        self._recent: dict[str, deque[RequestRecord]] = {}
        self._sightings: dict[SightingKey, list[float]] = {}  # [first, last, requests]
        self._last_used: dict[str, tuple[float, str | None]] = {}
        self._last_used_written: dict[str, float] = {}
        self.oldest_pending: float | None = None  # started_at of the oldest unwritten request
        self.dropped_sightings = 0

    def observe(self, record: RequestRecord) -> None:
        key_id = record.key_id
        if key_id is None:
            return
        at = record.started_at
        if self.oldest_pending is None:
            self.oldest_pending = at
        slot = (key_id, int(at // 60))
        counts = self._counts.get(slot)
        if counts is None:
            counts = self._counts[slot] = [0, 0, 0]
        counts[status_class(record.status)] += 1
        ring = self._recent.get(key_id)
        if ring is None:
            ring = self._recent[key_id] = deque(maxlen=RING_SIZE)
        ring.append(record)
        if record.client_ip:
            self._sighted((key_id, IP, record.client_ip[:64]), at)
        if record.user_agent:
            self._sighted((key_id, AGENT, without_keys(record.user_agent, MAX_AGENT_LENGTH)), at)
        if record.auth_failure not in KEY_STATE_REFUSALS:
            self._last_used[key_id] = (at, record.client_ip)

    def _sighted(self, key: SightingKey, at: float) -> None:
        seen = self._sightings.get(key)
        if seen is not None:
            seen[1] = at
            seen[2] += 1
        elif len(self._sightings) < MAX_PENDING_SIGHTINGS:
            self._sightings[key] = [at, at, 1]
        else:
            self.dropped_sightings += 1

    @property
    def has_pending(self) -> bool:
        return bool(self._counts or self._sightings or self._last_used)

    def drain(self, *, final: bool = False) -> UsageBatch:
        """Everything counted since the last drain; last uses only where a minute has passed
        since this key's previous write (all of them when `final`)."""
        counts, self._counts = self._counts, {}
        recent, self._recent = self._recent, {}
        sightings, self._sightings = self._sightings, {}
        self.oldest_pending = None
        return UsageBatch(
            counts=[MinuteCount(k, m, *c) for (k, m), c in sorted(counts.items())],
            recent=[_recent(r) for ring in recent.values() for r in ring],
            sightings=[
                Sighting(k, kind, value, _utc(s[0]), _utc(s[1]), int(s[2]))
                for (k, kind, value), s in sorted(sightings.items())
            ],
            last_uses=self._due_last_uses(final),
        )

    def _due_last_uses(self, final: bool) -> list[LastUse]:
        now = self._now()
        due = [
            key_id
            for key_id in self._last_used
            if final or now - self._last_used_written.get(key_id, 0.0) >= LAST_USED_EVERY
        ]
        uses = []
        for key_id in sorted(due):
            at, ip = self._last_used.pop(key_id)
            self._last_used_written[key_id] = now
            uses.append(LastUse(key_id, _utc(at), ip))
        return uses

    def restore(self, batch: UsageBatch) -> None:
        """Take back a batch that could not be written, so the next flush retries it."""
        for count in batch.counts:
            slot = (count.key_id, count.minute)
            counts = self._counts.setdefault(slot, [0, 0, 0])
            counts[0] += count.success
            counts[1] += count.client_error
            counts[2] += count.server_error
            self.oldest_pending = min(self.oldest_pending or float("inf"), count.minute * 60.0)
        for sighting in batch.sightings:
            self._restore_sighting(sighting)
        for use in batch.last_uses:
            self._last_used_written.pop(use.key_id, None)
            newer = self._last_used.get(use.key_id)
            if newer is None or newer[0] < use.at.timestamp():
                self._last_used[use.key_id] = (use.at.timestamp(), use.ip)
        # The ring of recent requests is a view, not a count: what did not fit is let go.

    def _restore_sighting(self, sighting: Sighting) -> None:
        key = (sighting.key_id, sighting.kind, sighting.value)
        first, last = sighting.first_seen.timestamp(), sighting.last_seen.timestamp()
        seen = self._sightings.get(key)
        if seen is None:
            self._sightings[key] = [first, last, sighting.requests]
        else:
            seen[0], seen[1], seen[2] = (
                min(seen[0], first),
                max(seen[1], last),
                seen[2] + (sighting.requests),
            )


def _utc(posix_seconds: float) -> datetime:
    return datetime.fromtimestamp(posix_seconds, UTC)


def _recent(record: RequestRecord) -> RecentRequest:
    assert record.key_id is not None
    return RecentRequest(
        key_id=record.key_id,
        at=_utc(record.started_at),
        request_id=record.request_id,
        method=record.method[:16],
        path=without_keys(record.path, MAX_PATH_LENGTH),
        route=record.route[:MAX_PATH_LENGTH] if record.route else None,
        status=record.status,
        latency_ms=round(record.latency * 1000, 3),
        client_ip=record.client_ip[:64] if record.client_ip else None,
        user_agent=without_keys(record.user_agent, MAX_AGENT_LENGTH) if record.user_agent else None,
        acting_user_id=record.acting_user_id,
        refusal=record.auth_failure,
    )
