"""The management API's use cases (`/v1/keys`, docs/contract.md §8): who may do what with which key.

A caller is an API key (its Principal) acting as a user. Managing keys needs the scope
`keys:manage` and an owner or admin; a key never hands out a scope it does not hold itself,
whether by creating, updating or rotating, and never acts on a key broader than itself in a way
that gives rights (activating, updating, rotating; deactivating and revoking take rights away
and stay allowed). That check comes before any state conflict: a caller that may not act on a
key learns nothing of its state. Everything happens inside the caller's company:
another company's key is NotFound, exactly like an unknown one. Rotating oneself needs only
one's own credential.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from keyport.domain import scopes as scope_rules
from keyport.domain.audit import Actor
from keyport.domain.errors import (
    FieldError,
    InsufficientScope,
    PermissionDenied,
    ValidationFailed,
)
from keyport.domain.keys import ApiKey, IssuedKey, KeyState
from keyport.domain.personal_tokens import PersonalToken
from keyport.domain.principal import Principal
from keyport.domain.users import User, parse_uuid
from keyport.services.keys.lifecycle import KeyService, RotatedKey

MANAGERS_ONLY = "Only owners and admins can manage API keys"
DEFAULT_PAGE = 50
MAX_PAGE = 100


@dataclass(frozen=True, slots=True)
class Caller:
    principal: Principal
    user: User
    actor: Actor  # "via API key <id>" in the audit log


@dataclass(frozen=True, slots=True)
class KeyListPage:
    keys: Sequence[ApiKey]
    next_cursor: str | None


def require_manager(caller: Caller) -> None:
    if not scope_rules.grants(caller.principal.scopes, scope_rules.KEYS_MANAGE):
        raise InsufficientScope(scope_rules.KEYS_MANAGE)
    if not caller.user.is_admin:
        raise PermissionDenied(MANAGERS_ONLY)


# A keys:manage key that is not itself `*` cannot make a default (full access) key: it
# would hand out what it does not hold. Said in the 403 so that the caller knows what to do.
DEFAULT_KEY_HINT = FieldError(
    "scopes",
    "A key can only give the scopes it holds itself, and leaving out scopes asks for full "
    'access (*). Name the scopes the new key needs, such as ["users:read"], or create a '
    "full-access key in the dashboard or with `keyport key create`.",
)


def require_grantable(caller: Caller, wanted: Iterable[str], *, creating: bool = False) -> None:
    """403 naming the first scope the caller would hand out without holding it; one that
    asks for a new full-access key says what to do instead."""
    for scope in wanted:
        if not scope_rules.grants(caller.principal.scopes, scope):
            hint = DEFAULT_KEY_HINT if creating and scope == scope_rules.FULL_ACCESS else None
            raise InsufficientScope(scope, hint)


def encode_cursor(key: ApiKey | PersonalToken) -> str:
    raw = f"{key.created_at.isoformat()}|{key.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (created_at, id) a cursor stands for; anything this API did not hand out is 400."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, key_id = raw.split("|", 1)
        moment = datetime.fromisoformat(created)
        if moment.tzinfo is None or parse_uuid(key_id) != key_id:
            raise ValueError(cursor)
        return moment.astimezone(UTC), key_id
    except (ValueError, OverflowError, binascii.Error, UnicodeDecodeError):
        raise ValidationFailed.single("cursor", "is not a cursor this API handed out") from None


def parse_state(status: str | None) -> KeyState | None:
    if status is None or status == "":
        return None
    try:
        return KeyState(status)
    except ValueError:
        raise ValidationFailed.single(
            "status", "must be one of active, deactivated, expired, revoked"
        ) from None


class KeyApi:
    def __init__(self, keys: KeyService) -> None:
        self._keys = keys

    async def list_keys(
        self, caller: Caller, *, status: str | None, limit: int, cursor: str | None
    ) -> KeyListPage:
        require_manager(caller)
        state = parse_state(status)
        after = decode_cursor(cursor) if cursor else None
        found = await self._keys.page(
            caller.principal.company_id, state=state, after=after, limit=limit + 1
        )
        page = list(found[:limit])
        more = len(found) > limit
        return KeyListPage(page, encode_cursor(page[-1]) if more and page else None)

    async def create_key(
        self,
        caller: Caller,
        *,
        name: str | None,
        days: object,
        scopes: object,
        allowed_ips: object,
        rate_limit: object,
    ) -> IssuedKey:
        require_manager(caller)
        wanted = scopes if scopes is not None else scope_rules.DEFAULT_SCOPES
        if isinstance(wanted, list | tuple):
            require_grantable(caller, (s for s in wanted if isinstance(s, str)), creating=True)
        return await self._keys.issue_key(
            caller.principal.company_id,
            name=name,
            days=days,
            actor=caller.actor,
            rate_limit=rate_limit,
            scopes=scopes,
            allowed_ips=allowed_ips,
        )

    async def get_key(self, caller: Caller, key_id: str) -> ApiKey:
        require_manager(caller)
        return await self._keys.get_key(caller.principal.company_id, key_id)

    async def update_key(
        self, caller: Caller, key_id: str, changes: Mapping[str, object]
    ) -> ApiKey:
        require_manager(caller)
        target = await self._held_key(caller, key_id)
        wanted = changes.get("scopes")
        if isinstance(wanted, list | tuple):
            require_grantable(caller, (s for s in wanted if isinstance(s, str)))
        elif "scopes" in changes and wanted is None:
            require_grantable(caller, scope_rules.DEFAULT_SCOPES)
        return await self._keys.update_key(
            caller.principal.company_id, target.id, changes, caller.actor
        )

    async def deactivate_key(self, caller: Caller, key_id: str) -> ApiKey:
        require_manager(caller)
        return await self._keys.deactivate_key(caller.principal.company_id, key_id, caller.actor)

    async def activate_key(self, caller: Caller, key_id: str) -> ApiKey:
        require_manager(caller)
        target = await self._held_key(caller, key_id)
        return await self._keys.activate_key(caller.principal.company_id, target.id, caller.actor)

    async def revoke_key(self, caller: Caller, key_id: str) -> ApiKey:
        require_manager(caller)
        return await self._keys.revoke_key(caller.principal.company_id, key_id, caller.actor)

    async def rotate_key(
        self, caller: Caller, key_id: str, *, grace_period_seconds: object, days: object
    ) -> RotatedKey:
        require_manager(caller)
        target = await self._held_key(caller, key_id)
        return await self._keys.rotate_key(
            caller.principal.company_id,
            target.id,
            caller.actor,
            grace_period_seconds=grace_period_seconds,
            days=days,
        )

    async def rotate_self(
        self, principal: Principal, actor: Actor, *, grace_period_seconds: object, days: object
    ) -> RotatedKey:
        """Any active key may replace itself with its own credential; no scope needed."""
        return await self._keys.rotate_key(
            principal.company_id,
            principal.key_id,
            actor,
            grace_period_seconds=grace_period_seconds,
            days=days,
            by_itself=True,
        )

    async def _held_key(self, caller: Caller, key_id: str) -> ApiKey:
        """The key, once the caller holds every scope it has: 403 comes before any state
        conflict (409), so a narrower key learns nothing of a broader key's state."""
        target = await self._keys.get_key(caller.principal.company_id, key_id)
        require_grantable(caller, target.scopes)
        return target
