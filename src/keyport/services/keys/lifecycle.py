"""The API key lifecycle: issue, list, deactivate, activate, revoke, rotate.

Every change also queues its webhook event (services.webhooks.endpoints.emit) in the same
transaction.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from keyport.domain import keys as key_rules
from keyport.domain import rotation as rotation_rules
from keyport.domain.audit import Actor, AuditAction
from keyport.domain.clock import Clock
from keyport.domain.errors import FieldProblems, NotFound, ValidationFailed
from keyport.domain.key_events import key_object
from keyport.domain.keys import ApiKey, IssuedKey, KeyState, KeyStatus
from keyport.domain.users import parse_uuid
from keyport.domain.webhooks import EventType
from keyport.services.access.cache import KEY
from keyport.services.access.invalidation import Invalidator
from keyport.services.ports import UnitOfWork, UnitOfWorkFactory
from keyport.services.runtime.changes import Change, Changes
from keyport.services.webhooks.endpoints import emit

_TRANSITIONS = {
    KeyStatus.INACTIVE: AuditAction.KEY_DEACTIVATED,
    KeyStatus.ACTIVE: AuditAction.KEY_ACTIVATED,
    KeyStatus.REVOKED: AuditAction.KEY_REVOKED,
}
_EVENTS = {
    KeyStatus.INACTIVE: EventType.DEACTIVATED,
    KeyStatus.ACTIVE: EventType.ACTIVATED,
    KeyStatus.REVOKED: EventType.REVOKED,
}


_FIELD_NAMES = {
    "name": "name",
    "scopes": "scopes",
    "allowedIps": "allowed_ips",
    "rateLimit": "rate_limit",
}
_ORDER = tuple(_FIELD_NAMES)
_UPDATABLE = frozenset(_FIELD_NAMES)


def _text(value: object, field: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ValidationFailed.single(field, "must be a string or null")


def _plain(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value


@dataclass(frozen=True, slots=True)
class RotatedKey:
    issued: IssuedKey  # the new key, its secret shown this once
    previous: ApiKey  # the old key, with the expiry the grace period gave it


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
        scopes: object = None,
        allowed_ips: object = None,
    ) -> IssuedKey:
        """Create a key; the returned `key` is the only time the secret exists in full.

        `scopes` None: full access (`*`); `allowed_ips` None or empty: usable from anywhere.
        """
        problems = FieldProblems()
        clean_name = problems.check(key_rules.validate_key_name, name, None)
        valid_days = problems.check(key_rules.validate_expiry_days, days, 0)
        valid_limit = problems.check(key_rules.validate_rate_limit, rate_limit, None)
        nothing: tuple[str, ...] = ()
        valid_scopes = problems.check(key_rules.validate_scopes, scopes, nothing)
        valid_networks = problems.check(key_rules.validate_allowed_ips, allowed_ips, nothing)
        problems.done()
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
            scopes=valid_scopes,
            allowed_ips=valid_networks,
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
                "scopes": list(valid_scopes),
                "allowedIps": list(valid_networks),
            }
            await change.record(company_id, AuditAction.KEY_CREATED, actor, record.id, details)
            await emit(change.uow, company_id, EventType.CREATED, key_object(record, now), now)
        return IssuedKey(record, secret_key)

    async def rotate_key(
        self,
        company_id: str,
        key_id: str,
        actor: Actor,
        *,
        grace_period_seconds: object = 0,
        days: object = None,
        by_itself: bool = False,
    ) -> RotatedKey:
        """A new key with the old one's name, scopes, allowlist and limit; the old one ends
        after the grace (at once by default), and never later than it would have. A key
        rotating itself (`by_itself`) asks for at most its own lifetime."""
        problems = FieldProblems()
        grace = problems.check(rotation_rules.validate_grace, grace_period_seconds, timedelta(0))
        valid_days = (
            None if days is None else problems.check(key_rules.validate_expiry_days, days, 0)
        )
        problems.done()
        async with self._changes.open() as change:
            now = change.now
            # Locked until commit: of two rotations at once, the second sees the first's
            # successor and is refused.
            old = await self._find(change.uow, company_id, key_id, for_update=True)
            rotation_rules.check_rotatable(old, now)
            if by_itself:
                rotation_rules.check_own_lifetime(old, valid_days)
            lifetime = valid_days or rotation_rules.default_days(old)
            new_id = uuid.uuid4()
            secret_key = key_rules.generate_key(new_id)
            record = dataclasses.replace(
                old,
                id=str(new_id),
                hint=key_rules.hint(secret_key),
                status=KeyStatus.ACTIVE,
                expires_at=key_rules.expiry_from(now, lifetime),
                created_at=now,
                created_by=actor.user_id,
                last_used_at=None,
                last_used_ip=None,
            )
            previous = dataclasses.replace(
                old, expires_at=rotation_rules.grace_end(old, now, grace), rotated_to=record.id
            )
            await change.uow.keys.add(record, key_rules.digest(secret_key))
            await change.uow.keys.mark_rotated(old.id, record.id, previous.expires_at)
            created = {
                "name": record.name,
                "expiresInDays": lifetime,
                "expiresAt": record.expires_at.isoformat(),
                "rateLimit": record.rate_limit,
                "scopes": list(record.scopes),
                "allowedIps": list(record.allowed_ips),
                "rotatedFrom": old.id,
            }
            await change.record(company_id, AuditAction.KEY_CREATED, actor, record.id, created)
            rotated = {
                "newKeyId": record.id,
                "gracePeriodSeconds": int(grace.total_seconds()),
                "oldKeyExpiresAt": previous.expires_at.isoformat(),
            }
            await change.record(
                company_id, AuditAction.KEY_ROTATED, actor, old.id, rotated, evict=True
            )
            data = key_object(record, now) | {"previousKeyId": old.id}
            await emit(change.uow, company_id, EventType.ROTATED, data, now)
        return RotatedKey(IssuedKey(record, secret_key), previous)

    async def company_of_key(self, key_id: str) -> str:
        """The company a key belongs to: key ids are unique, so commands need no company."""
        canonical = parse_uuid(key_id)
        async with self._uow() as uow:
            company_id = await uow.keys.company_of(canonical) if canonical else None
        if company_id is None:
            raise NotFound("API key not found")
        return company_id

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
        fields = {"rate_limit": key_rules.validate_rate_limit(rate_limit)}
        return await self._set(company_id, key_id, fields, actor, AuditAction.KEY_RATE_LIMIT_SET)

    async def set_scopes(
        self, company_id: str, key_id: str, scopes: object, actor: Actor
    ) -> ApiKey:
        """Replace the key's scopes (None: full access); every process obeys within a second."""
        fields = {"scopes": key_rules.validate_scopes(scopes)}
        return await self._set(company_id, key_id, fields, actor, AuditAction.KEY_SCOPES_SET)

    async def set_allowed_ips(
        self, company_id: str, key_id: str, allowed_ips: object, actor: Actor
    ) -> ApiKey:
        """Replace the key's IP allowlist (None or empty: anywhere)."""
        fields = {"allowed_ips": key_rules.validate_allowed_ips(allowed_ips)}
        return await self._set(company_id, key_id, fields, actor, AuditAction.KEY_ALLOWED_IPS_SET)

    async def update_key(
        self, company_id: str, key_id: str, changes: Mapping[str, object], actor: Actor
    ) -> ApiKey:
        """Change any of name, scopes, allowedIps, rateLimit (the keys given) at once."""
        unknown = set(changes) - _UPDATABLE
        if unknown:
            raise ValidationFailed.single(sorted(unknown)[0], "is not a known field")
        if not changes:
            raise ValidationFailed.single("body", f"name at least one of {', '.join(_ORDER)}")
        validators: dict[str, Callable[[Any], Any]] = {
            "name": lambda value: key_rules.validate_key_name(_text(value, "name")),
            "scopes": key_rules.validate_scopes,
            "allowedIps": key_rules.validate_allowed_ips,
            "rateLimit": key_rules.validate_rate_limit,
        }
        problems = FieldProblems()
        fields: dict[str, Any] = {
            _FIELD_NAMES[name]: problems.check(validators[name], changes[name], None)
            for name in _ORDER
            if name in changes
        }
        problems.done()
        return await self._set(company_id, key_id, fields, actor)

    async def _set(
        self,
        company_id: str,
        key_id: str,
        fields: Mapping[str, Any],
        actor: Actor,
        one_field_action: AuditAction | None = None,
    ) -> ApiKey:
        """Store validated `fields` (ApiKey attribute names) of the key, audited as KEY_UPDATED
        with each field's from/to under its API name, or, for a one-field setter, as
        `one_field_action` with that field's from/to alone."""
        async with self._changes.open() as change:
            current = await self._find(change.uow, company_id, key_id, for_update=True)
            await self._store_fields(change.uow, current.id, fields)
            changed = dataclasses.replace(current, **fields)
            moves = {
                name: {"from": _plain(getattr(current, f)), "to": _plain(getattr(changed, f))}
                for name, f in _FIELD_NAMES.items()
                if f in fields
            }
            if one_field_action is None:
                await self._record_update(change, changed, AuditAction.KEY_UPDATED, moves, actor)
            else:
                (move,) = moves.values()
                await self._record_update(change, changed, one_field_action, move, actor)
        return changed

    @staticmethod
    async def _store_fields(uow: UnitOfWork, key_id: str, fields: Mapping[str, Any]) -> None:
        if "name" in fields:
            await uow.keys.set_name(key_id, fields["name"])
        if "scopes" in fields:
            await uow.keys.set_scopes(key_id, fields["scopes"])
        if "allowed_ips" in fields:
            await uow.keys.set_allowed_ips(key_id, fields["allowed_ips"])
        if "rate_limit" in fields:
            await uow.keys.set_rate_limit(key_id, fields["rate_limit"])

    async def expiring_within(self, company_id: str, within: timedelta) -> Sequence[ApiKey]:
        now = self._clock.now()
        async with self._uow() as uow:
            active = await uow.keys.page(company_id, KeyState.ACTIVE, now, None, 1000)
        soon = [k for k in active if k.expires_at - now <= within]
        return sorted(soon, key=lambda k: k.expires_at)

    async def page(
        self,
        company_id: str,
        *,
        state: KeyState | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> Sequence[ApiKey]:
        async with self._uow() as uow:
            return await uow.keys.page(company_id, state, self._clock.now(), after, limit)

    @staticmethod
    async def _record_update(
        change: Change,
        changed: ApiKey,
        action: AuditAction,
        details: dict[str, Any],
        actor: Actor,
    ) -> None:
        """Audits a change of a key's settings, evicts it everywhere, queues `api_key.updated`."""
        await change.record(changed.company_id, action, actor, changed.id, details, evict=True)
        data = key_object(changed, change.now)
        await emit(change.uow, changed.company_id, EventType.UPDATED, data, change.now)

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
            changed = dataclasses.replace(current, status=target)
            data = key_object(changed, change.now)
            await emit(change.uow, company_id, _EVENTS[target], data, change.now)
        return changed

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
