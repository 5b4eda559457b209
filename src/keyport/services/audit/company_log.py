"""The company's audit log for its owners and admins: every key and user change and every
sign-in, filtered by actor, action and key, a page at a time or all at once for export."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from keyport.domain.audit import AuditEvent
from keyport.domain.keys import ApiKey
from keyport.domain.users import User, parse_uuid
from keyport.services.accounts.users import require_admin
from keyport.services.audit.trail import AuditTrail
from keyport.services.ports import AuditFilter, UnitOfWorkFactory

EXPORT_LIMIT = 50_000  # newest events in one CSV export
MAX_CHOICES = 1000  # users and keys offered as filters


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """What to show; a value that cannot match anything (a malformed id) matches nothing."""

    action: str | None = None
    actor_user_id: str | None = None
    key_id: str | None = None


@dataclass(frozen=True, slots=True)
class AuditChoices:
    actors: Sequence[User]
    keys: Sequence[ApiKey]  # newest first


@dataclass(frozen=True, slots=True)
class AuditPage:
    events: Sequence[AuditEvent]
    total: int
    offset: int
    people: Mapping[str, User]  # live users of the company named in the events


class AuditLog:
    def __init__(self, uow: UnitOfWorkFactory, trail: AuditTrail) -> None:
        self._uow = uow
        self._trail = trail

    async def page(self, acting: User, query: AuditQuery, *, limit: int, offset: int) -> AuditPage:
        require_admin(acting)
        async with self._uow() as uow:
            events, total = await uow.audit.list(_filter(acting, query), limit, offset)
        return AuditPage(events, total, offset, await self._people(acting, events))

    async def export(self, acting: User, query: AuditQuery) -> AuditPage:
        return await self.page(acting, query, limit=EXPORT_LIMIT, offset=0)

    async def choices(self, acting: User) -> AuditChoices:
        """The company's users and keys, to filter by (and to name keys in the log)."""
        require_admin(acting)
        async with self._uow() as uow:
            users, _ = await uow.users.list(acting.company_id, None, MAX_CHOICES, 0)
            keys = await uow.keys.list(acting.company_id, MAX_CHOICES, 0)
        return AuditChoices(users, keys)

    async def _people(self, acting: User, events: Sequence[AuditEvent]) -> Mapping[str, User]:
        named = [e.actor.user_id for e in events]
        named += [e.target_id for e in events if e.target_type == "user"]
        return await self._trail.people(acting.company_id, named)


def _filter(acting: User, query: AuditQuery) -> AuditFilter:
    nothing = "-"  # no event has this id: a malformed one in the query finds nothing
    return AuditFilter(
        company_id=acting.company_id,
        action=query.action or None,
        actor_user_id=_id_or(query.actor_user_id, nothing),
        key_id=_id_or(query.key_id, nothing),
    )


def _id_or(value: str | None, nothing: str) -> str | None:
    if not value:
        return None
    return parse_uuid(value.strip()) or nothing
