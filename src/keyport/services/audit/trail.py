"""Reading the audit log for people: events of one thing, with the users who acted."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from keyport.domain.audit import AuditAction, AuditEvent
from keyport.domain.users import User
from keyport.services.ports import AuditFilter, UnitOfWorkFactory


@dataclass(frozen=True, slots=True)
class Trail:
    """The newest events of one target, newest first, and the users named in them."""

    events: Sequence[AuditEvent]
    total: int
    people: Mapping[str, User]


class AuditTrail:
    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def of_target(self, company_id: str, target_id: str, *, limit: int = 100) -> Trail:
        async with self._uow() as uow:
            events, total = await uow.audit.list(
                AuditFilter(company_id=company_id, target_id=target_id), limit, 0
            )
        people = await self.people(company_id, (e.actor.user_id for e in events))
        return Trail(events, total, people)

    async def replacements(self, company_id: str, key_ids: Iterable[str]) -> dict[str, str]:
        """Old key id → the id of the key that replaced it, for the rotated ones of `key_ids`
        (the newest rotation, if one was rotated again during its grace)."""
        wanted = tuple(dict.fromkeys(key_ids))
        if not wanted:
            return {}
        found: dict[str, str] = {}
        async with self._uow() as uow:
            events, _ = await uow.audit.list(
                AuditFilter(
                    company_id=company_id, action=AuditAction.KEY_ROTATED, target_ids=wanted
                ),
                max(100, 4 * len(wanted)),
                0,
            )
        for event in events:  # newest first
            new_id = event.details.get("newKeyId")
            if event.target_id and isinstance(new_id, str):
                found.setdefault(event.target_id, new_id)
        return found

    async def people(self, company_id: str, user_ids: Iterable[str | None]) -> dict[str, User]:
        """The company's live users among `user_ids`; others (deleted, foreign) are left out."""
        wanted = {user_id for user_id in user_ids if user_id}
        found: dict[str, User] = {}
        if not wanted:
            return found
        async with self._uow() as uow:
            for user_id in sorted(wanted):
                user = await uow.users.get(company_id, user_id)
                if user is not None:
                    found[user_id] = user
        return found
