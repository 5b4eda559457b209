"""Webhook endpoints of a company, and events into the outbox.

Events are written by `emit` inside the unit of work of the change they report: the change
and its event commit together or not at all. The worker in services.webhooks.delivery sends
them later. The signing secret is stored sealed (services.accounts.secret_box): only a process
holding the server secret can sign, and a copy of the database alone holds no secret.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from keyport.domain import webhooks as rules
from keyport.domain.audit import Actor, AuditAction
from keyport.domain.clock import Clock
from keyport.domain.errors import FieldError, FieldProblems, NotFound
from keyport.domain.key_events import event_payload
from keyport.domain.users import parse_uuid
from keyport.domain.webhooks import Delivery, Endpoint, NewEndpoint
from keyport.services.accounts.secret_box import SecretBox
from keyport.services.ports import UnitOfWork, UnitOfWorkFactory
from keyport.services.runtime.changes import Changes

DELIVERY_LOG_LENGTH = 100


class TargetCheck(Protocol):
    async def refusal(self, url: str) -> str | None:
        """Why `url` may not receive webhooks (private address, unresolvable), or None."""
        ...


async def emit(
    uow: UnitOfWork, company_id: str, event_type: str, data: dict[str, Any], now: datetime
) -> None:
    """Queue one event for the company's endpoints, in the caller's transaction."""
    await uow.webhooks.enqueue(
        company_id,
        event_type,
        event_payload(event_type, data, now),
        rules.new_message_id(),
        now,
    )


class WebhookService:
    def __init__(
        self, uow: UnitOfWorkFactory, clock: Clock, targets: TargetCheck, box: SecretBox
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._targets = targets
        self._box = box
        self._changes = Changes(uow, clock, "webhook")  # no cache holds endpoints

    async def add_endpoint(
        self, company_id: str, url: str, event_types: Sequence[str], actor: Actor
    ) -> NewEndpoint:
        problems = FieldProblems()
        clean_url = problems.check(rules.validate_url, url, "")
        types = problems.check(rules.validate_event_types, list(event_types), list[str]())
        refusal = await self._targets.refusal(clean_url) if clean_url else None
        if refusal is not None:
            problems.errors.insert(0, FieldError("url", refusal))
        problems.done()
        now = self._clock.now()
        endpoint = Endpoint(
            id=str(uuid.uuid4()),
            company_id=company_id,
            url=clean_url,
            events=tuple(types),
            created_at=now,
            failing_since=None,
            disabled_at=None,
        )
        secret = rules.new_secret()
        async with self._changes.open(now) as change:
            if await change.uow.companies.get(company_id) is None:
                raise NotFound("Company not found")
            await change.uow.webhooks.add_endpoint(endpoint, self._box.seal(secret))
            details = {"url": clean_url, "events": types}
            await change.record(company_id, AuditAction.WEBHOOK_ADDED, actor, endpoint.id, details)
        return NewEndpoint(endpoint, secret)

    async def list_endpoints(self, company_id: str) -> Sequence[Endpoint]:
        async with self._uow() as uow:
            return await uow.webhooks.endpoints(company_id)

    async def get_endpoint(self, company_id: str, endpoint_id: str) -> Endpoint:
        """One endpoint of the company; another company's is NotFound, like an unknown one."""
        return await self._find(company_id, endpoint_id)

    async def company_of(self, endpoint_id: str) -> str:
        found = await self._find(None, endpoint_id)
        return found.company_id

    async def remove_endpoint(self, company_id: str | None, endpoint_id: str, actor: Actor) -> None:
        async with self._changes.open() as change:
            endpoint = await self._find_in(change.uow, company_id, endpoint_id)
            await change.uow.webhooks.remove_endpoint(endpoint.id, change.now)
            details = {"url": endpoint.url}
            await change.record(
                endpoint.company_id, AuditAction.WEBHOOK_REMOVED, actor, endpoint.id, details
            )

    async def deliveries(
        self, company_id: str, limit: int = DELIVERY_LOG_LENGTH
    ) -> Sequence[Delivery]:
        async with self._uow() as uow:
            return await uow.webhooks.deliveries(company_id, limit)

    async def retry_now(self, company_id: str, delivery_id: int) -> None:
        """Send a pending or given-up delivery on the worker's next tick."""
        async with self._uow(write=True) as uow:
            if not await uow.webhooks.retry_now(company_id, delivery_id, self._clock.now()):
                raise NotFound("Delivery not found")
            await uow.commit()

    async def _find(self, company_id: str | None, endpoint_id: str) -> Endpoint:
        async with self._uow() as uow:
            return await self._find_in(uow, company_id, endpoint_id)

    @staticmethod
    async def _find_in(uow: UnitOfWork, company_id: str | None, endpoint_id: str) -> Endpoint:
        canonical = parse_uuid(endpoint_id)
        found = await uow.webhooks.get_endpoint(canonical) if canonical else None
        if found is None or (company_id is not None and found.company_id != company_id):
            raise NotFound("Webhook endpoint not found")
        return found
