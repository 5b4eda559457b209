"""The dashboard's use cases: a signed-in owner or admin manages their company's API keys.

Every method takes the acting user and works only inside that user's company, whatever key id
it is given: another company's key is NotFound, exactly like an unknown one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, timedelta, tzinfo

from keyport.domain.audit import Actor
from keyport.domain.errors import NotFound, PermissionDenied
from keyport.domain.keys import ApiKey, IssuedKey
from keyport.domain.usage import Bucket
from keyport.domain.users import User
from keyport.services.audit.trail import AuditTrail, Trail
from keyport.services.keys.lifecycle import KeyService, RotatedKey
from keyport.services.observability.usage_reports import KeyUsage, UsageReports

KEY_MANAGERS_ONLY = "Only company owners and admins can manage API keys"
TRAIL_LENGTH = 100


@dataclass(frozen=True, slots=True)
class KeyListing:
    keys: Sequence[ApiKey]
    total: int
    offset: int
    creators: Mapping[str, User]
    daily_usage: Mapping[str, Sequence[Bucket]]  # per key: requests per day, 14 days
    replaced_by: Mapping[str, ApiKey]  # rotated keys: old key id → the key that replaced it


@dataclass(frozen=True, slots=True)
class KeyDetail:
    key: ApiKey
    creator: User | None
    trail: Trail
    usage: KeyUsage
    replaced_by: ApiKey | None = None  # the key that replaced this one, if it was rotated


def require_key_manager(acting: User) -> None:
    if not acting.is_admin:
        raise PermissionDenied(KEY_MANAGERS_ONLY)


class KeyManagement:
    def __init__(self, keys: KeyService, audit: AuditTrail, usage: UsageReports) -> None:
        self._keys = keys
        self._audit = audit
        self._usage = usage

    async def list_keys(
        self, acting: User, *, limit: int, offset: int, zone: tzinfo = UTC
    ) -> KeyListing:
        """`zone`: the viewer's, whose calendar days the usage is counted in."""
        require_key_manager(acting)
        page = await self._keys.list_keys(acting.company_id, limit=limit, offset=offset)
        creators = await self._audit.people(acting.company_id, (k.created_by for k in page.keys))
        daily = await self._usage.daily_totals(page.keys, zone)
        replaced_by = await self._replacements(acting.company_id, page.keys)
        return KeyListing(page.keys, page.total, offset, creators, daily, replaced_by)

    async def _replacements(self, company_id: str, keys: Sequence[ApiKey]) -> dict[str, ApiKey]:
        """The keys that replaced the rotated ones among `keys`, by the old key's id."""
        new_ids = await self._audit.replacements(company_id, (k.id for k in keys))
        known = {k.id: k for k in keys}
        found: dict[str, ApiKey] = {}
        for old_id, new_id in new_ids.items():
            new = known.get(new_id)
            if new is None:
                try:
                    new = await self._keys.get_key(company_id, new_id)
                except NotFound:
                    continue
            found[old_id] = new
        return found

    async def issue_key(
        self,
        acting: User,
        actor: Actor,
        *,
        name: str | None,
        days: object,
        scopes: object = None,
        allowed_ips: object = None,
        rate_limit: object = None,
    ) -> IssuedKey:
        require_key_manager(acting)
        return await self._keys.issue_key(
            acting.company_id,
            name=name,
            days=days,
            actor=actor,
            scopes=scopes,
            allowed_ips=allowed_ips,
            rate_limit=rate_limit,
        )

    async def key_detail(self, acting: User, key_id: str, zone: tzinfo = UTC) -> KeyDetail:
        require_key_manager(acting)
        key = await self._keys.get_key(acting.company_id, key_id)
        trail = await self._audit.of_target(acting.company_id, key.id, limit=TRAIL_LENGTH)
        creator = (await self._audit.people(acting.company_id, [key.created_by])).get(
            key.created_by or ""
        )
        usage = await self._usage.key_usage(key, zone)
        replaced_by = (await self._replacements(acting.company_id, [key])).get(key.id)
        return KeyDetail(key, creator, trail, usage, replaced_by)

    async def get_key(self, acting: User, key_id: str) -> ApiKey:
        require_key_manager(acting)
        return await self._keys.get_key(acting.company_id, key_id)

    async def deactivate_key(self, acting: User, key_id: str, actor: Actor) -> ApiKey:
        require_key_manager(acting)
        return await self._keys.deactivate_key(acting.company_id, key_id, actor)

    async def activate_key(self, acting: User, key_id: str, actor: Actor) -> ApiKey:
        require_key_manager(acting)
        return await self._keys.activate_key(acting.company_id, key_id, actor)

    async def revoke_key(self, acting: User, key_id: str, actor: Actor) -> ApiKey:
        require_key_manager(acting)
        return await self._keys.revoke_key(acting.company_id, key_id, actor)

    async def rotate_key(
        self, acting: User, key_id: str, actor: Actor, *, grace_period_seconds: object
    ) -> RotatedKey:
        require_key_manager(acting)
        return await self._keys.rotate_key(
            acting.company_id, key_id, actor, grace_period_seconds=grace_period_seconds
        )

    async def expiring_soon(self, acting: User, within: timedelta) -> Sequence[ApiKey]:
        """The company's working keys that expire within `within`, soonest first; rotated
        ones are left out (they end as planned: their replacement is already in use)."""
        require_key_manager(acting)
        soon = await self._keys.expiring_within(acting.company_id, within)
        rotated = await self._audit.replacements(acting.company_id, (k.id for k in soon))
        return [k for k in soon if k.id not in rotated]

    async def set_scopes(self, acting: User, key_id: str, scopes: object, actor: Actor) -> ApiKey:
        require_key_manager(acting)
        return await self._keys.set_scopes(acting.company_id, key_id, scopes, actor)

    async def set_rate_limit(
        self, acting: User, key_id: str, rate_limit: object, actor: Actor
    ) -> ApiKey:
        """The key's own requests a minute; None: the server's default."""
        require_key_manager(acting)
        return await self._keys.set_rate_limit(acting.company_id, key_id, rate_limit, actor)

    async def set_allowed_ips(
        self, acting: User, key_id: str, allowed_ips: object, actor: Actor
    ) -> ApiKey:
        require_key_manager(acting)
        return await self._keys.set_allowed_ips(acting.company_id, key_id, allowed_ips, actor)
