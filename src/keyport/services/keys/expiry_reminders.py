"""Expiry reminders: `api_key.expiring` 7 days and 1 day before, `api_key.expired` after;
the same for personal access tokens (`personal_access_token.expiring` / `.expired`).

Run at start and every tick of a SingletonLoop (one process at a time). Each notice is
recorded per key, so it fires at most once even if two checks overlapped. A key that is
already past several thresholds when first seen (created inside one, or no process ran for
a while) gets only the latest one; the earlier ones are recorded as passed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from keyport.domain.clock import Clock
from keyport.domain.key_events import key_object
from keyport.domain.keys import ApiKey
from keyport.domain.personal_tokens import PersonalToken, token_object
from keyport.domain.webhooks import EventType
from keyport.services.ports import UnitOfWork, UnitOfWorkFactory
from keyport.services.webhooks.endpoints import emit

WARN_BEFORE = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class Notice:
    name: str
    before_expiry: timedelta
    event: EventType


NOTICES = (
    Notice("expiring_7d", timedelta(days=7), EventType.EXPIRING),
    Notice("expiring_1d", timedelta(days=1), EventType.EXPIRING),
    Notice("expired", timedelta(0), EventType.EXPIRED),
)
_TOKEN_EVENTS = {
    EventType.EXPIRING: EventType.TOKEN_EXPIRING,
    EventType.EXPIRED: EventType.TOKEN_EXPIRED,
}


def passed(key: ApiKey | PersonalToken, now: datetime) -> list[Notice]:
    if key.expires_at is None:
        return []
    expires_at = key.expires_at
    return [n for n in NOTICES if expires_at - n.before_expiry <= now]


class ExpiryReminders:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock
        self.fired = 0

    async def check(self) -> int:
        """Fire what is due; the number of events fired."""
        now = self._clock.now()
        fired = 0
        async with self._uow(write=True) as uow:
            for key in await uow.expiry_notices.keys_expiring_before(now + WARN_BEFORE):
                fired += await self._notify(uow, key, now)
            for token in await uow.tokens.expiring_before(now + WARN_BEFORE):
                fired += await self._notify_token(uow, token, now)
            await uow.commit()
        self.fired += fired
        return fired

    @staticmethod
    async def _notify(uow: UnitOfWork, key: ApiKey, now: datetime) -> int:
        due = passed(key, now)
        if not due:
            return 0
        sent = await uow.expiry_notices.sent(key.id)
        if due[-1].name in sent:
            return 0
        for notice in due:
            if notice.name not in sent:
                await uow.expiry_notices.mark(key.id, notice.name, now)
        data = key_object(key, now)
        await emit(uow, key.company_id, due[-1].event, data, now)
        return 1

    @staticmethod
    async def _notify_token(uow: UnitOfWork, token: PersonalToken, now: datetime) -> int:
        due = passed(token, now)
        if not due:
            return 0
        sent = await uow.tokens.notices_sent(token.id)
        if due[-1].name in sent:
            return 0
        for notice in due:
            if notice.name not in sent:
                await uow.tokens.mark_notice(token.id, notice.name, now)
        policy = await uow.tokens.policy(token.company_id)
        data = token_object(token, now, policy.allow)
        await emit(uow, token.company_id, _TOKEN_EVENTS[due[-1].event], data, now)
        return 1
