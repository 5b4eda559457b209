"""Reading usage for the dashboard (services.observability.usage_reports.UsageReader)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from keyport.db.tables import key_recent_requests, key_sightings, key_usage_minutes
from keyport.domain.usage import MINUTES_PER_HOUR, HourRow, RecentRequest, Sighting
from keyport.services.observability.usage_reports import SightingSummary

_minutes = key_usage_minutes.c
_recent = key_recent_requests.c
_sightings = key_sightings.c


def _to_recent(row: Any) -> RecentRequest:
    return RecentRequest(
        key_id=row.key_id,
        at=row.occurred_at,
        request_id=row.request_id,
        method=row.method,
        path=row.path,
        route=row.route,
        status=row.status,
        latency_ms=row.latency_ms,
        client_ip=row.client_ip,
        user_agent=row.user_agent,
        acting_user_id=row.acting_user_id,
        refusal=row.refusal,
    )


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
        query = (
            select(key_recent_requests)
            .where(_recent.key_id == key_id)
            .order_by(_recent.occurred_at.desc(), _recent.id.desc())
            .limit(limit)
        )
        async with self._engine.connect() as connection:
            return [_to_recent(row) for row in await connection.execute(query)]

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
