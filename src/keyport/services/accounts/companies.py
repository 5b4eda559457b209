"""Companies: creating one with its owner, and finding the one an operator means."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from keyport.domain.audit import Actor, AuditAction
from keyport.domain.clock import Clock
from keyport.domain.errors import NotFound, ValidationFailed
from keyport.domain.users import NewUser, Role, User, UserType, parse_uuid
from keyport.services.accounts.passwords import Passwords
from keyport.services.accounts.users import ensure_unique
from keyport.services.ports import Company, UnitOfWorkFactory
from keyport.services.runtime.changes import Changes

MAX_COMPANY_NAME = 200


@dataclass(frozen=True, slots=True)
class NewCompany:
    company: Company
    owner: User


class CompanyService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, passwords: Passwords) -> None:
        self._uow = uow
        self._changes = Changes(uow, clock, "company")  # no cache holds companies
        self._passwords = passwords

    async def create_company(
        self, name: str, owner: NewUser, actor: Actor, *, owner_password: str | None = None
    ) -> NewCompany:
        clean_name = name.strip()
        if not clean_name or len(clean_name) > MAX_COMPANY_NAME:
            raise ValidationFailed.single("company", f"must be 1 to {MAX_COMPANY_NAME} characters")
        valid_owner = NewUser(
            owner.email,
            owner.given_name,
            owner.family_name,
            owner.timezone,
            owner.slug,
            owner.language,
            Role.OWNER,
            UserType.STANDARD,
        ).validated()
        password_hash = (
            await self._passwords.hash(owner_password) if owner_password is not None else None
        )
        async with self._changes.open() as change:
            uow, now = change.uow, change.now
            await ensure_unique(uow, valid_owner.email, valid_owner.slug, None)
            company = await uow.companies.add(str(uuid.uuid4()), clean_name, now)
            user = await uow.users.add(
                str(uuid.uuid4()), company.id, valid_owner, password_hash, now
            )
            details = {"name": clean_name, "ownerId": user.id}
            await change.record(company.id, AuditAction.COMPANY_CREATED, actor, company.id, details)
        return NewCompany(company, user)

    async def list_companies(self, limit: int = 100) -> Sequence[Company]:
        async with self._uow() as uow:
            return await uow.companies.list(limit)

    async def resolve_company(self, company_id: str | None) -> Company:
        """The named company, or the only one there is."""
        async with self._uow() as uow:
            if company_id is not None:
                canonical = parse_uuid(company_id)
                found = await uow.companies.get(canonical) if canonical else None
                if found is None:
                    raise NotFound(f"No company with id {company_id}")
                return found
            existing = await uow.companies.list(limit=2)
        if not existing:
            raise NotFound("No company exists yet: run `keyport init` first")
        if len(existing) > 1:
            raise ValidationFailed.single("company-id", "is needed: several companies exist")
        return existing[0]
