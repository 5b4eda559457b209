"""SQLAlchemy Core implementation of services.ports.TeamRepository."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, exists, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from keyport.db.tables import companies, invitations, recovery_codes, sign_in_places, users
from keyport.domain.users import Role
from keyport.services.ports import Invitation, TwoFactorState

_inv = invitations.c


def _to_invitation(row: Any) -> Invitation:
    return Invitation(
        digest=row.digest,
        user_id=row.user_id,
        company_id=row.company_id,
        created_by=row.created_by,
        created_at=row.created_at,
        expires_at=row.expires_at,
        used_at=row.used_at,
    )


class SqlTeamRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def _update_user(self, user_id: str, **values: Any) -> None:
        await self._connection.execute(update(users).where(users.c.id == user_id).values(values))

    async def add_invitation(self, invitation: Invitation) -> None:
        await self._connection.execute(
            insert(invitations).values(
                digest=invitation.digest,
                user_id=invitation.user_id,
                company_id=invitation.company_id,
                created_by=invitation.created_by,
                created_at=invitation.created_at,
                expires_at=invitation.expires_at,
            )
        )

    async def invitation(self, digest: str) -> Invitation | None:
        row = (
            await self._connection.execute(select(invitations).where(_inv.digest == digest))
        ).first()
        return _to_invitation(row) if row else None

    async def use_invitation(self, digest: str, now: datetime) -> bool:
        result = await self._connection.execute(
            update(invitations)
            .where(_inv.digest == digest, _inv.used_at.is_(None))
            .values(used_at=now)
        )
        return bool(result.rowcount)

    async def mark_invited(self, user_id: str, now: datetime) -> None:
        await self._update_user(user_id, invited_at=now)

    async def accept(self, user_id: str, password_hash: str, now: datetime) -> None:
        await self._update_user(
            user_id, password_hash=password_hash, invited_at=None, updated_at=now
        )

    async def set_role(self, user_id: str, role: Role, now: datetime) -> None:
        await self._update_user(user_id, role=role.value, updated_at=now)

    async def set_require_two_factor(self, company_id: str, required: bool) -> None:
        await self._connection.execute(
            update(companies)
            .where(companies.c.id == company_id)
            .values(require_two_factor=required)
        )

    async def record_sign_in(
        self, user_id: str, now: datetime, place: str | None, forget_before: datetime
    ) -> None:
        await self._update_user(user_id, last_sign_in_at=now)
        await self._connection.execute(
            delete(sign_in_places).where(
                sign_in_places.c.user_id == user_id, sign_in_places.c.last_at < forget_before
            )
        )
        if place is None:
            return
        dialect = postgresql if self._connection.dialect.name == "postgresql" else sqlite
        statement = dialect.insert(sign_in_places).values(user_id=user_id, place=place, last_at=now)
        await self._connection.execute(
            statement.on_conflict_do_update(
                index_elements=["user_id", "place"], set_={"last_at": statement.excluded.last_at}
            )
        )

    async def sign_in_standing(
        self, email: str, place: str | None, since: datetime
    ) -> tuple[str | None, bool]:
        known = exists().where(
            and_(
                sign_in_places.c.user_id == users.c.id,
                sign_in_places.c.place == (place or ""),
                sign_in_places.c.last_at >= since,
            )
        )
        row = (
            await self._connection.execute(
                select(users.c.password_hash, known).where(
                    users.c.email == email, users.c.deleted_at.is_(None)
                )
            )
        ).first()
        return (row[0], bool(row[1])) if row else (None, False)

    async def two_factor(self, user_id: str) -> TwoFactorState:
        row = (
            await self._connection.execute(
                select(
                    users.c.totp_secret, users.c.totp_pending_secret, users.c.totp_last_step
                ).where(users.c.id == user_id)
            )
        ).first()
        if row is None:
            return TwoFactorState(None, None, None)
        return TwoFactorState(row.totp_secret, row.totp_pending_secret, row.totp_last_step)

    async def set_pending_secret(self, user_id: str, sealed: str | None) -> None:
        await self._update_user(user_id, totp_pending_secret=sealed)

    async def enable_two_factor(
        self, user_id: str, sealed: str, step: int, recovery_digests: Sequence[str]
    ) -> None:
        await self._update_user(
            user_id, totp_secret=sealed, totp_pending_secret=None, totp_last_step=step
        )
        await self._connection.execute(
            delete(recovery_codes).where(recovery_codes.c.user_id == user_id)
        )
        await self._connection.execute(
            insert(recovery_codes),
            [{"user_id": user_id, "digest": digest} for digest in recovery_digests],
        )

    async def disable_two_factor(self, user_id: str) -> None:
        await self._update_user(
            user_id, totp_secret=None, totp_pending_secret=None, totp_last_step=None
        )
        await self._connection.execute(
            delete(recovery_codes).where(recovery_codes.c.user_id == user_id)
        )

    async def claim_step(self, user_id: str, step: int) -> bool:
        # One conditional UPDATE: of two requests with the same code, only one succeeds.
        result = await self._connection.execute(
            update(users)
            .where(
                users.c.id == user_id,
                or_(users.c.totp_last_step.is_(None), users.c.totp_last_step < step),
            )
            .values(totp_last_step=step)
        )
        return bool(result.rowcount)

    async def use_recovery_code(self, user_id: str, digest: str, now: datetime) -> bool:
        result = await self._connection.execute(
            update(recovery_codes)
            .where(
                recovery_codes.c.user_id == user_id,
                recovery_codes.c.digest == digest,
                recovery_codes.c.used_at.is_(None),
            )
            .values(used_at=now)
        )
        return bool(result.rowcount)

    async def recovery_codes_left(self, user_id: str) -> int:
        left = await self._connection.scalar(
            select(func.count()).where(
                recovery_codes.c.user_id == user_id, recovery_codes.c.used_at.is_(None)
            )
        )
        return int(left or 0)
