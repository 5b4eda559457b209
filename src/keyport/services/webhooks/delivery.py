"""Sending queued webhook events: one worker across all processes, retried on a schedule.

Guarantees (docs/operations.md): at least once. A delivery is marked done only after the
receiver answered 2xx; a process that dies between sending and recording sends it again
after the lease passes to another process, with the same `webhook-id`, which receivers use
to drop duplicates. Nothing committed is lost by a crash: the outbox is in the database.

Endpoint secrets are stored sealed; the worker opens each one just to sign. One sealed under
another server secret (KEYPORT_SECRET_KEY changed) fails its deliveries with a reason, it does
not stop the worker: the operator removes the endpoint and adds it again (a new secret).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from keyport.domain import webhooks as rules
from keyport.domain.audit import Actor, AuditAction
from keyport.domain.webhooks import DueDelivery
from keyport.services.accounts.secret_box import SecretBox, SecretUnreadable
from keyport.services.ports import UnitOfWorkFactory

logger = logging.getLogger(__name__)

BATCH = 20  # deliveries sent at once; with the 5 s timeout a batch takes at most ~5 s
BATCHES_PER_TICK = 3  # so a tick ends well inside the worker's lease (its lease)
UNREADABLE_SECRET = (
    "signing secret cannot be opened (KEYPORT_SECRET_KEY changed?): remove and re-add the endpoint"
)


@dataclass(frozen=True, slots=True)
class Outcome:
    status_code: int | None  # None: no answer (refused, timeout, connection error)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookSender(Protocol):
    async def send(self, url: str, headers: dict[str, str], body: bytes) -> Outcome: ...


class WebhookDeliverer:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        sender: WebhookSender,
        box: SecretBox,
        now: Callable[[], datetime],
    ) -> None:
        self._uow = uow
        self._sender = sender
        self._box = box
        self._now = now
        self.sent = 0
        self.failed = 0

    async def deliver_due(self) -> int:
        """Send every delivery that is due (in batches); the number of attempts made."""
        attempted = 0
        for _ in range(BATCHES_PER_TICK):
            async with self._uow() as uow:
                due = await uow.webhooks.due(self._now(), BATCH)
            if not due:
                return attempted
            await asyncio.gather(*(self._attempt(d) for d in due))
            attempted += len(due)
            if len(due) < BATCH:
                return attempted
        return attempted

    async def _attempt(self, delivery: DueDelivery) -> None:
        started = self._now()
        try:
            secret = self._box.open(delivery.sealed_secret)
        except SecretUnreadable:
            await self._record_unsignable(delivery)
            return
        headers = rules.headers(
            secret, delivery.message_id, int(started.timestamp()), delivery.body
        )
        try:
            outcome = await self._sender.send(delivery.endpoint.url, headers, delivery.body)
        except Exception as error:  # a sender bug must not stop the worker
            outcome = Outcome(None, type(error).__name__)
        if outcome.ok:
            await self._record_success(delivery, outcome)
        else:
            await self._record_failure(delivery, outcome)

    async def _record_success(self, delivery: DueDelivery, outcome: Outcome) -> None:
        assert outcome.status_code is not None
        async with self._uow(write=True) as uow:
            await uow.webhooks.record_success(
                delivery.id, delivery.endpoint.id, outcome.status_code, self._now()
            )
            await uow.commit()
        self.sent += 1

    async def _record_unsignable(self, delivery: DueDelivery) -> None:
        # Nothing is sent unsigned. Retrying cannot help until the endpoint gets a new secret,
        # so the delivery fails at once (an operator who restores the old server secret can
        # still press "retry"); the endpoint id says which one to replace, the secret stays out.
        logger.warning(
            "webhook delivery %s to endpoint %s failed: %s",
            delivery.id,
            delivery.endpoint.id,
            UNREADABLE_SECRET,
        )
        await self._record_failure(delivery, Outcome(None, UNREADABLE_SECRET), retry=False)

    async def _record_failure(
        self, delivery: DueDelivery, outcome: Outcome, *, retry: bool = True
    ) -> None:
        now = self._now()
        attempts = delivery.attempts + 1
        error = outcome.error or f"HTTP {outcome.status_code}"
        async with self._uow(write=True) as uow:
            failing_since = await uow.webhooks.record_failure(
                delivery.id,
                delivery.endpoint.id,
                outcome.status_code,
                error,
                now,
                rules.next_attempt(attempts, now) if retry else None,
            )
            if now - failing_since >= rules.DISABLE_AFTER and await uow.webhooks.disable_endpoint(
                delivery.endpoint.id, now
            ):
                await uow.audit.add(
                    company_id=delivery.endpoint.company_id,
                    action=AuditAction.WEBHOOK_DISABLED,
                    actor=Actor.system(),
                    target_type="webhook",
                    target_id=delivery.endpoint.id,
                    now=now,
                    details={
                        "url": delivery.endpoint.url,
                        "failingSince": failing_since.isoformat(),
                    },
                )
                logger.warning(
                    "webhook endpoint %s disabled after 3 days of failures", delivery.endpoint.id
                )
            await uow.commit()
        self.failed += 1
