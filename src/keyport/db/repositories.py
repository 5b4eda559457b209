"""SQLAlchemy Core implementations of the repository protocols in services.ports."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from keyport.db import principals, rows
from keyport.db.invalidation_channels import CHANNEL, encode
from keyport.db.tables import api_keys, audit_events, cache_invalidations, companies, users
from keyport.domain.audit import Actor, AuditEvent
from keyport.domain.errors import Conflict
from keyport.domain.keys import ApiKey, KeyState, KeyStatus
from keyport.domain.principal import Principal
from keyport.domain.users import NewUser, Role, User, UserChanges, UserType
from keyport.services.ports import AuditFilter, Company

_live_user = users.c.deleted_at.is_(None)


class _Repository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection


# What PostgreSQL (index name) and SQLite (column) call each unique rule of users.
_UNIQUE_USER_RULES = [
    (("uq_users_email_live", "users.email"), "A user with this email already exists"),
    (("uq_users_slug_live", "users.slug"), "This slug is already taken"),
    (("uq_users_owner", "users.company_id"), "The company already has an owner"),
]


async def _write_user(connection: AsyncConnection, statement: Any) -> None:
    """Runs an insert or update of users; a unique index that refuses it is a Conflict.

    The services check uniqueness first, for a clear message; two requests racing past that
    check meet the database's unique indexes, and the loser gets the same answer.
    """
    try:
        await connection.execute(statement)
    except IntegrityError as error:
        text = str(error.orig)
        for names, message in _UNIQUE_USER_RULES:
            if any(name in text for name in names):
                raise Conflict(message) from None
        raise


class SqlCompanyRepository(_Repository):
    async def add(self, company_id: str, name: str, now: datetime) -> Company:
        await self._connection.execute(
            insert(companies).values(id=company_id, name=name, created_at=now)
        )
        return Company(company_id, name, now)

    async def get(self, company_id: str) -> Company | None:
        row = (
            await self._connection.execute(select(companies).where(companies.c.id == company_id))
        ).first()
        return Company(row.id, row.name, row.created_at, row.require_two_factor) if row else None

    async def list(self, limit: int = 100) -> Sequence[Company]:
        result = await self._connection.execute(
            select(companies).order_by(companies.c.created_at, companies.c.id).limit(limit)
        )
        return [Company(r.id, r.name, r.created_at, r.require_two_factor) for r in result]


class SqlUserRepository(_Repository):
    async def add(
        self,
        user_id: str,
        company_id: str,
        user: NewUser,
        password_hash: str | None,
        now: datetime,
    ) -> User:
        await _write_user(
            self._connection,
            insert(users).values(
                id=user_id,
                company_id=company_id,
                email=user.email,
                given_name=user.given_name,
                family_name=user.family_name,
                slug=user.slug,
                timezone=user.timezone,
                language=user.language,
                role=user.role.value,
                user_type=user.user_type.value,
                password_hash=password_hash,
                created_at=now,
                updated_at=now,
            ),
        )
        return User(
            user_id,
            company_id,
            user.email,
            user.given_name,
            user.family_name,
            user.slug,
            user.timezone,
            user.language,
            user.role,
            user.user_type,
            now,
            now,
        )

    async def get(self, company_id: str, user_id: str, *, for_update: bool = False) -> User | None:
        query = select(users).where(
            users.c.id == user_id, users.c.company_id == company_id, _live_user
        )
        if for_update:  # see SqlKeyRepository.get
            query = query.with_for_update(key_share=True)
        row = (await self._connection.execute(query)).first()
        return rows.to_user(row) if row else None

    async def get_any(self, user_id: str) -> User | None:
        row = (
            await self._connection.execute(select(users).where(users.c.id == user_id, _live_user))
        ).first()
        return rows.to_user(row) if row else None

    async def get_by_email(self, email: str) -> tuple[User, str | None] | None:
        row = (
            await self._connection.execute(select(users).where(users.c.email == email, _live_user))
        ).first()
        return (rows.to_user(row), row.password_hash) if row else None

    async def owner_id(self, company_id: str) -> str | None:
        return await self._connection.scalar(
            select(users.c.id).where(
                users.c.company_id == company_id, users.c.role == Role.OWNER.value, _live_user
            )
        )

    async def list(
        self, company_id: str, user_type: UserType | None, limit: int, offset: int
    ) -> tuple[Sequence[User], int]:
        condition = and_(users.c.company_id == company_id, _live_user)
        if user_type is not None:
            condition = and_(condition, users.c.user_type == user_type.value)
        total = await self._connection.scalar(select(func.count()).where(condition)) or 0
        result = await self._connection.execute(
            select(users)
            .where(condition)
            .order_by(users.c.created_at, users.c.id)
            .limit(limit)
            .offset(offset)
        )
        return [rows.to_user(r) for r in result], int(total)

    async def email_taken(self, email: str) -> bool:
        found = await self._connection.scalar(
            select(users.c.id).where(users.c.email == email, _live_user)
        )
        return found is not None

    async def slug_taken(self, slug: str, except_user_id: str | None = None) -> bool:
        condition = and_(users.c.slug == slug, _live_user)
        if except_user_id is not None:
            condition = and_(condition, users.c.id != except_user_id)
        return await self._connection.scalar(select(users.c.id).where(condition)) is not None

    async def update(self, user_id: str, changes: UserChanges, now: datetime) -> None:
        values: dict[str, Any] = {"updated_at": now}
        if changes.given_name is not None:
            values["given_name"] = changes.given_name
        if changes.family_name is not None:
            values["family_name"] = changes.family_name
        if changes.slug is not None:
            values["slug"] = changes.slug
        await _write_user(
            self._connection, update(users).where(users.c.id == user_id).values(values)
        )

    async def soft_delete(self, user_id: str, now: datetime) -> None:
        await self._connection.execute(
            update(users)
            .where(users.c.id == user_id)
            .values(deleted_at=now, updated_at=now, password_hash=None)
        )

    async def set_password_hash(self, user_id: str, password_hash: str, now: datetime) -> None:
        await self._connection.execute(
            update(users)
            .where(users.c.id == user_id)
            .values(password_hash=password_hash, updated_at=now)
        )


class SqlKeyRepository(_Repository):
    async def add(self, key: ApiKey, digest: str) -> None:
        await self._connection.execute(
            insert(api_keys).values(
                id=key.id,
                company_id=key.company_id,
                name=key.name,
                digest=digest,
                hint=key.hint,
                status=key.status.value,
                expires_at=key.expires_at,
                created_at=key.created_at,
                created_by=key.created_by,
                rate_limit=key.rate_limit,
                scopes=list(key.scopes),
                allowed_ips=list(key.allowed_ips),
            )
        )

    async def get(self, company_id: str, key_id: str, *, for_update: bool = False) -> ApiKey | None:
        query = select(api_keys).where(api_keys.c.id == key_id, api_keys.c.company_id == company_id)
        if for_update:
            # FOR NO KEY UPDATE: waits for other changes of the key, not for usage rows that
            # merely reference it. SQLite needs nothing: a writer holds the whole database.
            query = query.with_for_update(key_share=True)
        row = (await self._connection.execute(query)).first()
        return rows.to_api_key(row) if row else None

    async def list(self, company_id: str, limit: int, offset: int) -> Sequence[ApiKey]:
        result = await self._connection.execute(
            select(api_keys)
            .where(api_keys.c.company_id == company_id)
            .order_by(api_keys.c.created_at.desc(), api_keys.c.id)
            .limit(limit)
            .offset(offset)
        )
        return [rows.to_api_key(r) for r in result]

    async def count(self, company_id: str) -> int:
        total = await self._connection.scalar(
            select(func.count()).where(api_keys.c.company_id == company_id)
        )
        return int(total or 0)

    async def set_status(self, key_id: str, status: KeyStatus) -> None:
        await self._connection.execute(
            update(api_keys).where(api_keys.c.id == key_id).values(status=status.value)
        )

    async def set_rate_limit(self, key_id: str, rate_limit: int | None) -> None:
        await self._connection.execute(
            update(api_keys).where(api_keys.c.id == key_id).values(rate_limit=rate_limit)
        )

    async def mark_rotated(self, key_id: str, successor_id: str, expires_at: datetime) -> None:
        await self._connection.execute(
            update(api_keys)
            .where(api_keys.c.id == key_id)
            .values(rotated_to=successor_id, expires_at=expires_at)
        )

    async def set_name(self, key_id: str, name: str | None) -> None:
        await self._connection.execute(
            update(api_keys).where(api_keys.c.id == key_id).values(name=name)
        )

    async def page(
        self,
        company_id: str,
        state: KeyState | None,
        now: datetime,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> Sequence[ApiKey]:
        query = select(api_keys).where(api_keys.c.company_id == company_id)
        if state is not None:
            query = query.where(_in_state(state, now))
        if after is not None:
            created, key_id = after
            query = query.where(
                or_(
                    api_keys.c.created_at < created,
                    and_(api_keys.c.created_at == created, api_keys.c.id < key_id),
                )
            )
        query = query.order_by(api_keys.c.created_at.desc(), api_keys.c.id.desc()).limit(limit)
        return [rows.to_api_key(r) for r in await self._connection.execute(query)]

    async def company_of(self, key_id: str) -> str | None:
        found = await self._connection.scalar(
            select(api_keys.c.company_id).where(api_keys.c.id == key_id)
        )
        return str(found) if found is not None else None

    async def set_scopes(self, key_id: str, scopes: tuple[str, ...]) -> None:
        await self._connection.execute(
            update(api_keys).where(api_keys.c.id == key_id).values(scopes=list(scopes))
        )

    async def set_allowed_ips(self, key_id: str, networks: tuple[str, ...]) -> None:
        await self._connection.execute(
            update(api_keys).where(api_keys.c.id == key_id).values(allowed_ips=list(networks))
        )

    async def principal_by_digest(self, digest: str) -> Principal | None:
        row = (
            await self._connection.execute(text(principals.SQLALCHEMY), {"digest": digest})
        ).first()
        return principals.to_principal(row) if row is not None else None


def _in_state(state: KeyState, now: datetime) -> Any:
    """domain.keys.effective_state as SQL: revoked beats expired beats deactivated."""
    revoked = api_keys.c.status == KeyStatus.REVOKED.value
    expired = api_keys.c.expires_at <= now
    if state is KeyState.REVOKED:
        return revoked
    if state is KeyState.EXPIRED:
        return and_(~revoked, expired)
    wanted = KeyStatus.ACTIVE if state is KeyState.ACTIVE else KeyStatus.INACTIVE
    return and_(api_keys.c.status == wanted.value, ~expired)


class SqlAuditRepository(_Repository):
    async def add(
        self,
        *,
        company_id: str | None,
        action: str,
        actor: Actor,
        target_type: str,
        target_id: str | None,
        now: datetime,
        details: dict[str, Any] | None = None,
    ) -> None:
        await self._connection.execute(
            insert(audit_events).values(
                company_id=company_id,
                action=action,
                actor_label=actor.label,
                actor_user_id=actor.user_id,
                actor_key_id=actor.key_id,
                ip=actor.ip,
                target_type=target_type,
                target_id=target_id,
                occurred_at=now,
                details=details or {},
            )
        )

    async def list(
        self, filters: AuditFilter, limit: int, offset: int
    ) -> tuple[Sequence[AuditEvent], int]:
        conditions = []
        if filters.company_id is not None:
            conditions.append(audit_events.c.company_id == filters.company_id)
        if filters.action:
            conditions.append(audit_events.c.action == filters.action)
        if filters.actor_user_id:
            conditions.append(audit_events.c.actor_user_id == filters.actor_user_id)
        if filters.target_id:
            conditions.append(audit_events.c.target_id == filters.target_id)
        if filters.target_ids:
            conditions.append(audit_events.c.target_id.in_(filters.target_ids))
        if filters.key_id:
            conditions.append(
                or_(
                    audit_events.c.target_id == filters.key_id,
                    audit_events.c.actor_key_id == filters.key_id,
                )
            )
        where = and_(True, *conditions)
        total = await self._connection.scalar(
            select(func.count()).where(where).select_from(audit_events)
        )
        result = await self._connection.execute(
            select(audit_events)
            .where(where)
            .order_by(audit_events.c.occurred_at.desc(), audit_events.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        return [rows.to_audit_event(r) for r in result], int(total or 0)


class SqlInvalidationLog(_Repository):
    async def append(self, kind: str, target: str, now: datetime) -> None:
        await self._connection.execute(
            insert(cache_invalidations).values(kind=kind, target=target, created_at=now)
        )
        if self._connection.dialect.name == "postgresql":
            # Delivered by PostgreSQL when, and only if, this transaction commits.
            await self._connection.execute(select(func.pg_notify(CHANNEL, encode(kind, target))))
