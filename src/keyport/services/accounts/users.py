"""Managing a company's users, with the permission rules of the v4 user API."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from keyport.domain.audit import Actor, AuditAction
from keyport.domain.clock import Clock
from keyport.domain.errors import Conflict, NotFound, PermissionDenied
from keyport.domain.users import NewUser, User, UserChanges, UserType, parse_uuid
from keyport.services.access.cache import USER
from keyport.services.access.invalidation import Invalidator
from keyport.services.accounts.passwords import Passwords
from keyport.services.accounts.sessions import SessionService
from keyport.services.ports import UnitOfWork, UnitOfWorkFactory
from keyport.services.runtime.changes import Changes

ADMIN_REQUIRED = "Only company owners and admins can do this"


@dataclass(frozen=True, slots=True)
class UserPage:
    users: Sequence[User]
    total: int
    offset: int


def require_admin(acting: User) -> None:
    if not acting.is_admin:
        raise PermissionDenied(ADMIN_REQUIRED)


class UserService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        invalidator: Invalidator,
        passwords: Passwords,
        sessions: SessionService,
    ) -> None:
        self._uow = uow
        self._changes = Changes(uow, clock, "user", (USER, invalidator))
        self._passwords = passwords
        self._sessions = sessions

    async def create_user(
        self, company_id: str, new_user: NewUser, actor: Actor, *, password: str | None = None
    ) -> User:
        valid = new_user.validated()
        password_hash = await self._passwords.hash(password) if password is not None else None
        async with self._changes.open() as change:
            uow = change.uow
            if await uow.companies.get(company_id) is None:
                raise NotFound("Company not found")
            await ensure_unique(uow, valid.email, valid.slug, None)
            user = await uow.users.add(
                str(uuid.uuid4()), company_id, valid, password_hash, change.now
            )
            details = {"email": user.email, "role": user.role.value}
            await change.record(company_id, AuditAction.USER_CREATED, actor, user.id, details)
        return user

    async def add_user(self, acting: User, new_user: NewUser, actor: Actor) -> User:
        """A user of the acting user's company, created by an admin."""
        require_admin(acting)
        return await self.create_user(acting.company_id, new_user, actor)

    async def get_user(self, company_id: str, user_id: str) -> User:
        async with self._uow() as uow:
            return await _find(uow, company_id, user_id)

    async def view_user(self, acting: User, user_id: str) -> User:
        """Users may read themselves; admins anyone in their company."""
        target = await self.get_user(acting.company_id, user_id)
        if target.id != acting.id:
            require_admin(acting)
        return target

    async def list_users(
        self, acting: User, *, user_type: UserType | None, limit: int, offset: int
    ) -> UserPage:
        require_admin(acting)
        async with self._uow() as uow:
            found, total = await uow.users.list(acting.company_id, user_type, limit, offset)
        return UserPage(found, total, offset)

    async def update_user(
        self, acting: User, user_id: str, changes: UserChanges, actor: Actor
    ) -> User:
        valid = changes.validated()
        async with self._changes.open() as change:
            uow = change.uow
            target = await _find(uow, acting.company_id, user_id, for_update=True)
            if target.id != acting.id:
                require_admin(acting)
            if valid.slug is not None and await uow.users.slug_taken(valid.slug, target.id):
                raise Conflict("This slug is already taken")
            await uow.users.update(target.id, valid, change.now)
            details = {"fields": _changed_fields(valid)}
            await change.record(
                acting.company_id, AuditAction.USER_UPDATED, actor, target.id, details, evict=True
            )
            updated = await _find(uow, acting.company_id, target.id)
        return updated

    async def delete_user(self, acting: User, user_id: str, actor: Actor) -> None:
        require_admin(acting)
        async with self._changes.open() as change:
            # Locked until commit: of two deletions of one user, the second finds it gone.
            target = await _find(change.uow, acting.company_id, user_id, for_update=True)
            if target.id == acting.id:
                raise PermissionDenied("You cannot delete yourself")
            if target.role.value == "owner":
                raise PermissionDenied("The company owner cannot be deleted")
            await change.uow.users.soft_delete(target.id, change.now)
            details = {"email": target.email}
            await change.record(
                acting.company_id, AuditAction.USER_DELETED, actor, target.id, details, evict=True
            )
        await self._sessions.end_all(target.id)

    async def set_password(self, email: str, password: str, actor: Actor) -> User:
        """The operator's reset: the user's dashboard sessions all end with the old password."""
        password_hash = await self._passwords.hash(password)
        async with self._changes.open() as change:
            found = await change.uow.users.get_by_email(email.strip().lower())
            if found is None:
                raise NotFound("No user with this email")
            user = found[0]
            await change.uow.users.set_password_hash(user.id, password_hash, change.now)
            await change.record(
                user.company_id, AuditAction.USER_PASSWORD_SET, actor, user.id, evict=True
            )
            if user.invited:  # a password set by the operator also completes an invitation
                await change.uow.team.accept(user.id, password_hash, change.now)
        await self._sessions.end_all(user.id)
        return user


async def _find(
    uow: UnitOfWork, company_id: str, user_id: str, *, for_update: bool = False
) -> User:
    canonical = parse_uuid(user_id)
    found = await uow.users.get(company_id, canonical, for_update=for_update) if canonical else None
    if found is None:
        raise NotFound("User not found")  # another company's user looks exactly like this
    return found


async def ensure_unique(
    uow: UnitOfWork, email: str, slug: str | None, except_user_id: str | None
) -> None:
    if await uow.users.email_taken(email):
        raise Conflict("A user with this email already exists")
    if slug is not None and await uow.users.slug_taken(slug, except_user_id):
        raise Conflict("This slug is already taken")


def _changed_fields(changes: UserChanges) -> list[str]:
    names = {
        "givenName": changes.given_name,
        "familyName": changes.family_name,
        "slug": changes.slug,
    }
    return [name for name, value in names.items() if value is not None]
