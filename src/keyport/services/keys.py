"""The API key lifecycle: issue, list, deactivate, activate, revoke."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from keyport.domain import keys as key_rules
from keyport.domain.audit import Actor, AuditAction
from keyport.domain.clock import Clock
from keyport.domain.errors import NotFound
from keyport.domain.keys import ApiKey, IssuedKey, KeyStatus
from keyport.domain.users import parse_uuid
from keyport.services.cache import KEY
from keyport.services.changes import Changes
from keyport.services.invalidation import Invalidator
from keyport.services.ports import UnitOfWork, UnitOfWorkFactory

_TRANSITIONS = {
    KeyStatus.INACTIVE: AuditAction.KEY_DEACTIVATED,
    KeyStatus.ACTIVE: AuditAction.KEY_ACTIVATED,
    KeyStatus.REVOKED: AuditAction.KEY_REVOKED,
}


@dataclass(frozen=True, slots=True)
class KeyPage:
    keys: Sequence[ApiKey]
    total: int


class KeyService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, invalidator: Invalidator) -> None:
        self._uow = uow
        self._clock = clock
        self._changes = Changes(uow, clock, "api_key", (KEY, invalidator))

    async def issue_key(
        self,
        company_id: str,
        *,
        name: str | None,
        days: object,
        actor: Actor,
        rate_limit: object = None,
    ) -> IssuedKey:
        """Create a key; the returned `key` is the only time the secret exists in full."""
        clean_name = key_rules.validate_key_name(name)
        valid_days = key_rules.validate_expiry_days(days)
        valid_limit = key_rules.validate_rate_limit(rate_limit)
        key_id = uuid.uuid4()
        secret_key = key_rules.generate_key(key_id)
        now = self._clock.now()
        record = ApiKey(
            id=str(key_id),
            company_id=company_id,
            name=clean_name,
            hint=key_rules.hint(secret_key),
            status=KeyStatus.ACTIVE,
            expires_at=key_rules.expiry_from(now, valid_days),
            created_at=now,
            created_by=actor.user_id,
            last_used_at=None,
            last_used_ip=None,
            rate_limit=valid_limit,
        )
        async with self._changes.open(now) as change:
            if await change.uow.companies.get(company_id) is None:
                raise NotFound("Company not found")
            await change.uow.keys.add(record, key_rules.digest(secret_key))
            details = {
                "name": clean_name,
                "expiresInDays": valid_days,
                "expiresAt": record.expires_at.isoformat(),
                "rateLimit": valid_limit,
            }
            await change.record(company_id, AuditAction.KEY_CREATED, actor, record.id, details)
        return IssuedKey(record, secret_key)

    async def list_keys(self, company_id: str, *, limit: int = 100, offset: int = 0) -> KeyPage:
        async with self._uow() as uow:
            found = await uow.keys.list(company_id, limit, offset)
            total = await uow.keys.count(company_id)
        return KeyPage(found, total)

    async def get_key(self, company_id: str, key_id: str) -> ApiKey:
        async with self._uow() as uow:
            return await self._find(uow, company_id, key_id)

    async def deactivate_key(self, company_id: str, key_id: str, actor: Actor) -> ApiKey:
        return await self._change_status(company_id, key_id, KeyStatus.INACTIVE, actor)

    async def activate_key(self, company_id: str, key_id: str, actor: Actor) -> ApiKey:
        return await self._change_status(company_id, key_id, KeyStatus.ACTIVE, actor)

    async def revoke_key(self, company_id: str, key_id: str, actor: Actor) -> ApiKey:
        """Irreversible: the key answers `Invalid API key` from now on, everywhere."""
        return await self._change_status(company_id, key_id, KeyStatus.REVOKED, actor)

    async def set_rate_limit(
        self, company_id: str, key_id: str, rate_limit: object, actor: Actor
    ) -> ApiKey:
        """The key's own requests a minute, or None to follow the configured default."""
        valid_limit = key_rules.validate_rate_limit(rate_limit)
        async with self._changes.open() as change:
            current = await self._find(change.uow, company_id, key_id, for_update=True)
            await change.uow.keys.set_rate_limit(current.id, valid_limit)
            details = {"from": current.rate_limit, "to": valid_limit}
            await change.record(
                company_id, AuditAction.KEY_RATE_LIMIT_SET, actor, current.id, details, evict=True
            )
        return dataclasses.replace(current, rate_limit=valid_limit)

    async def _change_status(
        self, company_id: str, key_id: str, target: KeyStatus, actor: Actor
    ) -> ApiKey:
        async with self._changes.open() as change:
            # Locked until commit: two changes of one key happen one after the other, so the
            # second sees the first (a deactivation cannot undo a concurrent revocation).
            current = await self._find(change.uow, company_id, key_id, for_update=True)
            key_rules.check_transition(current.status, target)
            await change.uow.keys.set_status(current.id, target)
            details = {"from": current.status.value, "to": target.value}
            await change.record(
                company_id, _TRANSITIONS[target], actor, current.id, details, evict=True
            )
        return dataclasses.replace(current, status=target)

    @staticmethod
    async def _find(
        uow: UnitOfWork, company_id: str, key_id: str, *, for_update: bool = False
    ) -> ApiKey:
        canonical = parse_uuid(key_id)
        found = (
            await uow.keys.get(company_id, canonical, for_update=for_update) if canonical else None
        )
        if found is None:
            raise NotFound("API key not found")
        return found
