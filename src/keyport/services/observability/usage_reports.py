"""Reading a key's usage for people: charts, recent requests, clients seen, unusual activity.

Reads only what the UsageFlusher wrote: requests of the last few seconds (one flush interval)
are not in it yet.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Protocol

from keyport.domain import anomalies
from keyport.domain.anomalies import Alert
from keyport.domain.clock import Clock
from keyport.domain.keys import ApiKey
from keyport.domain.usage import (
    AGENT,
    IP,
    Bucket,
    HourRow,
    RecentRequest,
    Sighting,
    daily_series,
    hour_of,
    hourly_series,
)

DAYS = 14
HOURS = DAYS * 24
RECENT_SHOWN = 20
SIGHTINGS_SHOWN = 10


@dataclass(frozen=True, slots=True)
class SightingSummary:
    """The addresses (or user agents) a key was used from."""

    total: int
    earliest_first_seen: datetime | None
    latest: Sequence[Sighting]  # most recently seen first
    new: Sequence[Sighting]  # first seen in the last 24 hours


class UsageReader(Protocol):
    async def hourly(self, key_ids: Sequence[str], since_hour: int) -> dict[str, list[HourRow]]:
        """Per key: (hour, success, client errors, server errors) for hours with requests."""
        ...

    async def recent(self, key_id: str, limit: int) -> list[RecentRequest]:
        """The key's newest requests, newest first."""
        ...

    async def sightings(
        self, key_id: str, kind: str, new_since: datetime, limit: int
    ) -> SightingSummary: ...


@dataclass(frozen=True, slots=True)
class KeyUsage:
    hours: Sequence[Bucket]  # the last 14 * 24 hours, oldest first, the current one last
    days: Sequence[Bucket]  # the last 14 days in the viewer's time zone, today last
    recent: Sequence[RecentRequest]
    addresses: SightingSummary
    agents: SightingSummary
    alerts: Sequence[Alert]
    last_request: RecentRequest | None  # the newest request the key was usable for

    @property
    def total(self) -> Bucket:
        first = self.days[0].start
        return Bucket(
            first,
            sum(d.success for d in self.days),
            sum(d.client_error for d in self.days),
            sum(d.server_error for d in self.days),
        )


class UsageReports:
    def __init__(self, reader: UsageReader, clock: Clock) -> None:
        self._reader = reader
        self._clock = clock

    async def key_usage(self, key: ApiKey, zone: tzinfo) -> KeyUsage:
        now = self._clock.now()
        first_hour, last_hour = _window(now, zone)
        rows = (await self._reader.hourly([key.id], first_hour)).get(key.id, [])
        all_hours = hourly_series(rows, first_hour, last_hour)
        hours = all_hours[-HOURS:]
        recent = await self._reader.recent(key.id, RECENT_SHOWN)
        since = now - anomalies.WINDOW
        addresses = await self._reader.sightings(key.id, IP, since, SIGHTINGS_SHOWN)
        agents = await self._reader.sightings(key.id, AGENT, since, SIGHTINGS_SHOWN)
        alerts = [
            *anomalies.new_sightings(addresses.new, addresses.earliest_first_seen, now),
            *anomalies.new_sightings(agents.new, agents.earliest_first_seen, now),
            *filter(
                None,
                [anomalies.spike(hours, key.created_at, now), anomalies.failure_burst(hours, now)],
            ),
        ]
        return KeyUsage(
            hours=hours,
            days=daily_series(all_hours, zone, now.astimezone(zone).date(), DAYS),
            recent=recent,
            addresses=addresses,
            agents=agents,
            alerts=sorted(alerts, key=lambda a: a.at, reverse=True),
            last_request=next((r for r in recent if r.key_was_usable), None),
        )

    async def daily_totals(
        self, keys: Sequence[ApiKey], zone: tzinfo
    ) -> Mapping[str, Sequence[Bucket]]:
        """Per key, requests per day over the last 14 days (for the list's sparklines)."""
        if not keys:
            return {}
        now = self._clock.now()
        first_hour, last_hour = _window(now, zone)
        rows = await self._reader.hourly([k.id for k in keys], first_hour)
        today = now.astimezone(zone).date()
        return {
            key.id: daily_series(
                hourly_series(rows.get(key.id, []), first_hour, last_hour), zone, today, DAYS
            )
            for key in keys
        }


def _window(now: datetime, zone: tzinfo) -> tuple[int, int]:
    """The first and last hour to read: 14 * 24 hours, and all of the 14 local days."""
    last_hour = hour_of(now)
    local = now.astimezone(zone)
    first_local_day = local.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(
        days=DAYS - 1
    )
    return min(last_hour - HOURS + 1, hour_of(first_local_day)), last_hour
