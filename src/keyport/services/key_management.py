"""The dashboard's use cases: a signed-in owner or admin manages their company's API keys.

Every method takes the acting user and works only inside that user's company, whatever key id
it is given: another company's key is NotFound, exactly like an unknown one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from keyport.domain.audit import Actor
from keyport.domain.errors import PermissionDenied
from keyport.domain.keys import ApiKey, IssuedKey
from keyport.domain.users import User
from keyport.services.audit import AuditTrail, Trail
from keyport.services.keys import KeyService

KEY_MANAGERS_ONLY = "Only company owners and admins can manage API keys"
TRAIL_LENGTH = 100


@dataclass(frozen=True, slots=True)
class KeyListing:
    keys: Sequence[ApiKey]
    total: int
    offset: int
    creators: Mapping[str, User]


@dataclass(frozen=True, slots=True)
class KeyDetail:
    key: ApiKey
    creator: User | None
    trail: Trail


def require_key_manager(acting: User) -> None:
    if not acting.is_admin:
        raise PermissionDenied(KEY_MANAGERS_ONLY)


class KeyManagement:
    def __init__(self, keys: KeyService, audit: AuditTrail) -> None:
        self._keys = keys
        self._audit = audit

    async def list_keys(self, acting: User, *, limit: int, offset: int) -> KeyListing:
        require_key_manager(acting)
        page = await self._keys.list_keys(acting.company_id, limit=limit, offset=offset)
        creators = await self._audit.people(acting.company_id, (k.created_by for k in page.keys))
        return KeyListing(page.keys, page.total, offset, creators)

    async def issue_key(
        self, acting: User, actor: Actor, *, name: str | None, days: object
    ) -> IssuedKey:
        require_key_manager(acting)
        return await self._keys.issue_key(acting.company_id, name=name, days=days, actor=actor)

    async def key_detail(self, acting: User, key_id: str) -> KeyDetail:
        require_key_manager(acting)
        key = await self._keys.get_key(acting.company_id, key_id)
        trail = await self._audit.of_target(acting.company_id, key.id, limit=TRAIL_LENGTH)
        creator = (await self._audit.people(acting.company_id, [key.created_by])).get(
            key.created_by or ""
        )
        return KeyDetail(key, creator, trail)

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
