"""Webhook endpoints, the outbox and the delivery log in SQL (services.ports.WebhookRepository)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update

from keyport.db.repositories import _Repository
from keyport.db.tables import webhook_deliveries as deliveries
from keyport.db.tables import webhook_endpoints as endpoints
from keyport.db.tables import webhook_events as events
from keyport.domain.webhooks import Delivery, DeliveryStatus, DueDelivery, Endpoint

_live = endpoints.c.removed_at.is_(None)
MAX_ERROR_LENGTH = 200


def _endpoint(row: Any) -> Endpoint:
    return Endpoint(
        id=row.id,
        company_id=row.company_id,
        url=row.url,
        events=tuple(row.events or ()),
        created_at=row.created_at,
        failing_since=row.failing_since,
        disabled_at=row.disabled_at,
    )


def body_of(payload: dict[str, Any]) -> bytes:
    """The exact bytes sent and signed: compact JSON, the same on every retry."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


class SqlWebhookRepository(_Repository):
    async def add_endpoint(self, endpoint: Endpoint, sealed_secret: str) -> None:
        await self._connection.execute(
            insert(endpoints).values(
                id=endpoint.id,
                company_id=endpoint.company_id,
                url=endpoint.url,
                secret=sealed_secret,
                events=list(endpoint.events),
                created_at=endpoint.created_at,
            )
        )

    async def endpoints(self, company_id: str) -> Sequence[Endpoint]:
        result = await self._connection.execute(
            select(endpoints)
            .where(endpoints.c.company_id == company_id, _live)
            .order_by(endpoints.c.created_at, endpoints.c.id)
        )
        return [_endpoint(r) for r in result]

    async def get_endpoint(self, endpoint_id: str) -> Endpoint | None:
        row = (
            await self._connection.execute(
                select(endpoints).where(endpoints.c.id == endpoint_id, _live)
            )
        ).first()
        return _endpoint(row) if row else None

    async def remove_endpoint(self, endpoint_id: str, now: datetime) -> None:
        # Kept as a row (the delivery log refers to it); pending deliveries stop here.
        await self._connection.execute(
            update(endpoints).where(endpoints.c.id == endpoint_id).values(removed_at=now)
        )
        await self._give_up_pending(endpoint_id, "endpoint removed")

    async def disable_endpoint(self, endpoint_id: str, now: datetime) -> bool:
        result = await self._connection.execute(
            update(endpoints)
            .where(endpoints.c.id == endpoint_id, endpoints.c.disabled_at.is_(None))
            .values(disabled_at=now)
        )
        await self._give_up_pending(endpoint_id, "endpoint disabled")
        return bool(result.rowcount)

    async def _give_up_pending(self, endpoint_id: str, reason: str) -> None:
        await self._connection.execute(
            update(deliveries)
            .where(
                deliveries.c.endpoint_id == endpoint_id,
                deliveries.c.status == DeliveryStatus.PENDING.value,
            )
            .values(status=DeliveryStatus.FAILED.value, next_attempt_at=None, last_error=reason)
        )

    async def enqueue(
        self,
        company_id: str,
        event_type: str,
        payload: dict[str, Any],
        message_id: str,
        now: datetime,
    ) -> int:
        targets = [e for e in await self.endpoints(company_id) if e.wants(event_type)]
        if not targets:
            return 0  # nobody listens: nothing to keep
        await self._connection.execute(
            insert(events).values(
                id=message_id,
                company_id=company_id,
                type=event_type,
                payload=payload,
                created_at=now,
            )
        )
        await self._connection.execute(
            insert(deliveries),
            [
                {
                    "event_id": message_id,
                    "endpoint_id": endpoint.id,
                    "status": DeliveryStatus.PENDING.value,
                    "attempts": 0,
                    "next_attempt_at": now,
                }
                for endpoint in targets
            ],
        )
        return len(targets)

    async def deliveries(self, company_id: str, limit: int) -> Sequence[Delivery]:
        result = await self._connection.execute(
            select(
                deliveries,
                events.c.type,
                events.c.created_at.label("event_created_at"),
                endpoints.c.url,
            )
            .join(events, events.c.id == deliveries.c.event_id)
            .join(endpoints, endpoints.c.id == deliveries.c.endpoint_id)
            .where(endpoints.c.company_id == company_id)
            .order_by(deliveries.c.id.desc())
            .limit(limit)
        )
        return [
            Delivery(
                id=r.id,
                event_id=r.event_id,
                event_type=r.type,
                endpoint_id=r.endpoint_id,
                url=r.url,
                status=DeliveryStatus(r.status),
                attempts=r.attempts,
                created_at=r.event_created_at,
                next_attempt_at=r.next_attempt_at,
                last_attempt_at=r.last_attempt_at,
                last_status_code=r.last_status_code,
                last_error=r.last_error,
            )
            for r in result
        ]

    async def retry_now(self, company_id: str, delivery_id: int, now: datetime) -> bool:
        live_endpoint = (
            select(endpoints.c.id)
            .where(
                endpoints.c.company_id == company_id,
                _live,
                endpoints.c.disabled_at.is_(None),
            )
            .scalar_subquery()
        )
        result = await self._connection.execute(
            update(deliveries)
            .where(
                deliveries.c.id == delivery_id,
                deliveries.c.endpoint_id.in_(live_endpoint),
                deliveries.c.status != DeliveryStatus.DELIVERED.value,
            )
            .values(status=DeliveryStatus.PENDING.value, next_attempt_at=now)
        )
        return bool(result.rowcount)

    async def due(self, now: datetime, limit: int) -> Sequence[DueDelivery]:
        result = await self._connection.execute(
            select(
                deliveries.c.id.label("delivery_id"),
                deliveries.c.attempts,
                events.c.id.label("message_id"),
                events.c.payload,
                endpoints,
            )
            .join(events, events.c.id == deliveries.c.event_id)
            .join(endpoints, endpoints.c.id == deliveries.c.endpoint_id)
            .where(
                deliveries.c.status == DeliveryStatus.PENDING.value,
                deliveries.c.next_attempt_at <= now,
                _live,
                endpoints.c.disabled_at.is_(None),
            )
            .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
            .limit(limit)
        )
        return [
            DueDelivery(
                id=r.delivery_id,
                attempts=r.attempts,
                message_id=r.message_id,
                body=body_of(r.payload),
                endpoint=_endpoint(r),
                sealed_secret=r.secret,
            )
            for r in result
        ]

    async def _lock_endpoint(self, endpoint_id: str) -> None:
        # Endpoint first, then its deliveries, in every writer: two outcomes for one endpoint
        # (or a disabling) take their locks in the same order and never deadlock.
        await self._connection.execute(
            select(endpoints.c.id).where(endpoints.c.id == endpoint_id).with_for_update()
        )

    async def record_success(
        self, delivery_id: int, endpoint_id: str, status_code: int, now: datetime
    ) -> None:
        await self._lock_endpoint(endpoint_id)
        await self._connection.execute(
            update(deliveries)
            .where(deliveries.c.id == delivery_id)
            .values(
                status=DeliveryStatus.DELIVERED.value,
                attempts=deliveries.c.attempts + 1,
                next_attempt_at=None,
                last_attempt_at=now,
                last_status_code=status_code,
                last_error=None,
            )
        )
        await self._connection.execute(
            update(endpoints).where(endpoints.c.id == endpoint_id).values(failing_since=None)
        )

    async def record_failure(
        self,
        delivery_id: int,
        endpoint_id: str,
        status_code: int | None,
        error: str,
        now: datetime,
        next_attempt_at: datetime | None,
    ) -> datetime:
        await self._lock_endpoint(endpoint_id)
        status = DeliveryStatus.PENDING if next_attempt_at else DeliveryStatus.FAILED
        await self._connection.execute(
            update(deliveries)
            .where(deliveries.c.id == delivery_id)
            .values(
                status=status.value,
                attempts=deliveries.c.attempts + 1,
                next_attempt_at=next_attempt_at,
                last_attempt_at=now,
                last_status_code=status_code,
                last_error=error[:MAX_ERROR_LENGTH],
            )
        )
        await self._connection.execute(
            update(endpoints)
            .where(endpoints.c.id == endpoint_id, endpoints.c.failing_since.is_(None))
            .values(failing_since=now)
        )
        since = await self._connection.scalar(
            select(endpoints.c.failing_since).where(endpoints.c.id == endpoint_id)
        )
        return since if since is not None else now
