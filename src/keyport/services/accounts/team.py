"""A company's team: roles, ownership, removal and the two-factor requirement.

The dashboard (acting user) and the operator's CLI (acting None, by email) share these use
cases and their rules (domain/team.py). A company has one owner at every moment: a transfer
demotes the old owner to admin and promotes the new one in one transaction, under the
database's one-owner index. Removing someone ends their sessions at once. Every change goes
through services/runtime/changes.py: audited in its own transaction, evicted after the commit.
"""

from __future__ import annotations

from collections.abc import Sequence

from keyport.domain import team as rules
from keyport.domain.audit import Actor, AuditAction
from keyport.domain.clock import Clock
from keyport.domain.errors import NotFound, PermissionDenied
from keyport.domain.users import Role, User, normalise_email, parse_uuid
from keyport.services.access.cache import COMPANY, USER
from keyport.services.access.invalidation import Invalidator
from keyport.services.accounts.sessions import SessionService
from keyport.services.accounts.users import require_admin
from keyport.services.ports import Company, UnitOfWork, UnitOfWorkFactory
from keyport.services.runtime.changes import Change, Changes

MAX_TEAM_PAGE = 1000


class TeamService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        invalidator: Invalidator,
        sessions: SessionService,
    ) -> None:
        self._uow = uow
        self._users = Changes(uow, clock, "user", (USER, invalidator))
        # Every key's principal names the owner (whom a key acts as by default): a transfer
        # evicts the whole company's cached principals and users, everywhere.
        self._companies = Changes(uow, clock, "company", (COMPANY, invalidator))
        self._sessions = sessions

    async def list_team(self, acting: User) -> Sequence[User]:
        require_admin(acting)
        async with self._uow() as uow:
            found, _ = await uow.users.list(acting.company_id, None, MAX_TEAM_PAGE, 0)
        return found

    async def member(self, acting: User, user_id: str) -> User:
        require_admin(acting)
        async with self._uow() as uow:
            return await _member(uow, acting.company_id, user_id)

    async def change_role(self, acting: User, user_id: str, role: Role, actor: Actor) -> User:
        require_admin(acting)
        async with self._users.open() as change:
            target = await _member(change.uow, acting.company_id, user_id, for_update=True)
            return await _set_role(change, acting, target, role, actor)

    async def set_role_by_email(self, email: str, role: Role, actor: Actor) -> User:
        """The operator's `keyport user set-role`."""
        async with self._users.open() as change:
            target = await _by_email(change.uow, email)
            return await _set_role(change, None, target, role, actor)

    async def transfer_ownership(self, acting: User, user_id: str, actor: Actor) -> User:
        if acting.role is not Role.OWNER:
            raise PermissionDenied("Only the owner can transfer ownership")
        async with self._companies.open() as change:
            target = await _member(change.uow, acting.company_id, user_id, for_update=True)
            return await _transfer(change, acting, target, actor)

    async def transfer_by_email(self, company: Company, email: str, actor: Actor) -> User:
        """The operator's `keyport company transfer-ownership --to EMAIL`."""
        async with self._companies.open() as change:
            target = await _by_email(change.uow, email)
            if target.company_id != company.id:
                raise NotFound(f"No user with this email in {company.name}")
            return await _transfer(change, None, target, actor)

    async def remove(self, acting: User, user_id: str, actor: Actor) -> User:
        async with self._users.open() as change:
            target = await _member(change.uow, acting.company_id, user_id, for_update=True)
            rules.check_removal(acting, target)
            await change.uow.users.soft_delete(target.id, change.now)
            details = {"email": target.email, "role": target.role.value}
            await change.record(
                acting.company_id, AuditAction.USER_DELETED, actor, target.id, details, evict=True
            )
        await self._sessions.end_all(target.id)
        return target

    async def require_two_factor(self, acting: User, required: bool, actor: Actor) -> None:
        if acting.role is not Role.OWNER:
            raise PermissionDenied("Only the owner can change this setting")
        async with self._companies.open() as change:
            await change.uow.team.set_require_two_factor(acting.company_id, required)
            await change.record(
                acting.company_id,
                AuditAction.TWO_FACTOR_REQUIREMENT_SET,
                actor,
                acting.company_id,
                {"required": required},
            )


async def _set_role(
    change: Change, acting: User | None, target: User, role: Role, actor: Actor
) -> User:
    rules.check_role_change(acting, target, role)
    await change.uow.team.set_role(target.id, role, change.now)
    details = {"email": target.email, "from": target.role.value, "to": role.value}
    await change.record(
        target.company_id, AuditAction.USER_ROLE_CHANGED, actor, target.id, details, evict=True
    )
    return await _member(change.uow, target.company_id, target.id)


async def _transfer(change: Change, acting: User | None, target: User, actor: Actor) -> User:
    uow = change.uow
    owner_id = await uow.users.owner_id(target.company_id)
    if owner_id is None:
        raise NotFound("The company has no owner")
    owner = await _member(uow, target.company_id, owner_id, for_update=True)
    rules.check_transfer(acting, owner, target)
    # Demote first: the one-owner index never sees two owners, and never none at commit.
    await uow.team.set_role(owner.id, Role.ADMIN, change.now)
    await uow.team.set_role(target.id, Role.OWNER, change.now)
    details = {
        "from": owner.email,
        "to": target.email,
        "previousOwnerId": owner.id,
        "newOwnerId": target.id,
    }
    await change.record(
        target.company_id,
        AuditAction.OWNERSHIP_TRANSFERRED,
        actor,
        target.company_id,
        details,
        evict=True,
    )
    return await _member(uow, target.company_id, target.id)


async def _member(
    uow: UnitOfWork, company_id: str, user_id: str, *, for_update: bool = False
) -> User:
    canonical = parse_uuid(user_id)
    found = await uow.users.get(company_id, canonical, for_update=for_update) if canonical else None
    if found is None:
        raise NotFound("User not found")
    return found


async def _by_email(uow: UnitOfWork, email: str) -> User:
    found = await uow.users.get_by_email(normalise_email(email))
    if found is None:
        raise NotFound("No user with this email")
    return found[0]
