"""Reading usage for the dashboard (services.observability.usage_reports.UsageReader)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from keyport.db.tables import key_recent_batches, key_sightings, key_usage_minutes
from keyport.domain.usage import MINUTES_PER_HOUR, HourRow, RecentEntry, RecentRequest, Sighting
from keyport.services.observability.usage_reports import SightingSummary

_minutes = key_usage_minutes.c
_batches = key_recent_batches.c
_decode_entries = msgspec.json.Decoder(list[RecentEntry]).decode
_sightings = key_sightings.c


def _moment(request: RecentRequest) -> datetime:
    return request.at


def _to_sighting(row: Any) -> Sighting:
    return Sighting(
        key_id=row.key_id,
        kind=row.kind,
        value=row.value,
        first_seen=row.first_seen_at,
        last_seen=row.last_seen_at,
        requests=row.requests,
    )


class SqlUsageReader:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def hourly(self, key_ids: Sequence[str], since_hour: int) -> dict[str, list[HourRow]]:
        hour = (_minutes.minute // MINUTES_PER_HOUR).label("hour")
        query = (
            select(
                _minutes.key_id,
                hour,
                func.sum(_minutes.success),
                func.sum(_minutes.client_error),
                func.sum(_minutes.server_error),
            )
            .where(
                _minutes.key_id.in_(list(key_ids)),
                _minutes.minute >= since_hour * MINUTES_PER_HOUR,
            )
            .group_by(_minutes.key_id, hour)
        )
        found: dict[str, list[HourRow]] = {}
        async with self._engine.connect() as connection:
            for key_id, hour_, success, client, server in await connection.execute(query):
                found.setdefault(key_id, []).append(
                    (int(hour_), int(success), int(client), int(server))
                )
        return found

    async def recent(self, key_id: str, limit: int) -> list[RecentRequest]:
        """The key's `limit` newest requests, newest first. Its ring is a few rows (trimmed
        once newer rows hold RING_SIZE requests), written by every process that served it, so
        they are all read and ordered by time."""
        query = (
            select(_batches.entries).where(_batches.key_id == key_id).order_by(_batches.id.desc())
        )
        async with self._engine.connect() as connection:
            batches = (await connection.scalars(query)).all()
        requests = [
            RecentRequest.of_entry(key_id, entry)
            for entries in batches
            for entry in reversed(_decode_entries(entries))
        ]
        requests.sort(key=_moment, reverse=True)  # stable: a tie keeps the newest row first
        return requests[:limit]

    async def sightings(
        self, key_id: str, kind: str, new_since: datetime, limit: int
    ) -> SightingSummary:
        mine = (_sightings.key_id == key_id, _sightings.kind == kind)
        async with self._engine.connect() as connection:
            total, earliest = (
                await connection.execute(
                    select(func.count(), func.min(_sightings.first_seen_at)).where(*mine)
                )
            ).one()
            latest = await connection.execute(
                select(key_sightings)
                .where(*mine)
                .order_by(_sightings.last_seen_at.desc(), _sightings.value)
                .limit(limit)
            )
            new = await connection.execute(
                select(key_sightings)
                .where(*mine, _sightings.first_seen_at >= new_since)
                .order_by(_sightings.first_seen_at.desc(), _sightings.value)
                .limit(limit)
            )
            return SightingSummary(
                total=int(total),
                earliest_first_seen=earliest,  # min() keeps the column's type
                latest=[_to_sighting(r) for r in latest],
                new=[_to_sighting(r) for r in new],
            )
