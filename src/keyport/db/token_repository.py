"""Personal access tokens, their companies' token policy, and their expiry notices in SQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from keyport.db.repositories import _Repository
from keyport.db.tables import companies, personal_access_tokens, token_expiry_notices, users
from keyport.domain.personal_tokens import PersonalToken, TokenPolicy

_tokens = personal_access_tokens.c


def to_token(row: Any) -> PersonalToken:
    return PersonalToken(
        id=row.id,
        company_id=row.company_id,
        user_id=row.user_id,
        name=row.name,
        hint=row.hint,
        scopes=tuple(row.scopes),
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        revoked_by=row.revoked_by,
        revoke_reason=row.revoke_reason,
        notice_dismissed=row.notice_dismissed_at is not None,
        last_used_at=row.last_used_at,
        last_used_ip=row.last_used_ip,
    )


class SqlTokenRepository(_Repository):
    async def add(self, token: PersonalToken, digest: str) -> None:
        await self._connection.execute(
            insert(personal_access_tokens).values(
                id=token.id,
                company_id=token.company_id,
                user_id=token.user_id,
                name=token.name,
                digest=digest,
                hint=token.hint,
                scopes=list(token.scopes),
                created_at=token.created_at,
                expires_at=token.expires_at,
            )
        )

    async def get(self, token_id: str, *, for_update: bool = False) -> PersonalToken | None:
        query = select(personal_access_tokens).where(_tokens.id == token_id)
        if for_update:
            query = query.with_for_update()
        row = (await self._connection.execute(query)).first()
        return to_token(row) if row else None

    async def of_user(self, user_id: str) -> Sequence[PersonalToken]:
        result = await self._connection.execute(
            select(personal_access_tokens)
            .where(_tokens.user_id == user_id)
            .order_by(_tokens.created_at.desc(), _tokens.id.desc())
        )
        return [to_token(r) for r in result]

    async def page(
        self,
        company_id: str,
        user_id: str | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> Sequence[PersonalToken]:
        """Newest first, after the (created_at, id) of the previous page's last token; only
        tokens of users still in the company."""
        query = (
            select(personal_access_tokens)
            .join(users, users.c.id == _tokens.user_id)
            .where(_tokens.company_id == company_id, users.c.deleted_at.is_(None))
        )
        if user_id is not None:
            query = query.where(_tokens.user_id == user_id)
        if after is not None:
            created, token_id = after
            query = query.where(
                or_(
                    _tokens.created_at < created,
                    and_(_tokens.created_at == created, _tokens.id < token_id),
                )
            )
        query = query.order_by(_tokens.created_at.desc(), _tokens.id.desc()).limit(limit)
        return [to_token(r) for r in await self._connection.execute(query)]

    async def revoke(
        self, token_id: str, now: datetime, by: str | None, reason: str | None
    ) -> None:
        await self._connection.execute(
            update(personal_access_tokens)
            .where(_tokens.id == token_id, _tokens.revoked_at.is_(None))
            .values(revoked_at=now, revoked_by=by, revoke_reason=reason)
        )

    async def dismiss_notices(self, user_id: str, now: datetime) -> None:
        await self._connection.execute(
            update(personal_access_tokens)
            .where(
                _tokens.user_id == user_id,
                _tokens.revoke_reason.is_not(None),
                _tokens.notice_dismissed_at.is_(None),
            )
            .values(notice_dismissed_at=now)
        )

    async def policy(self, company_id: str) -> TokenPolicy:
        row = (
            await self._connection.execute(
                select(
                    companies.c.tokens_allowed,
                    companies.c.token_max_days,
                    companies.c.token_allowed_ips,
                ).where(companies.c.id == company_id)
            )
        ).first()
        if row is None:
            return TokenPolicy()
        return TokenPolicy(bool(row[0]), row[1], tuple(row[2] or ()))

    async def set_policy(self, company_id: str, policy: TokenPolicy) -> None:
        await self._connection.execute(
            update(companies)
            .where(companies.c.id == company_id)
            .values(
                tokens_allowed=policy.allow,
                token_max_days=policy.max_days,
                token_allowed_ips=list(policy.allowed_ips),
            )
        )

    async def expiring_before(self, moment: datetime) -> Sequence[PersonalToken]:
        result = await self._connection.execute(
            select(personal_access_tokens)
            .where(
                _tokens.expires_at.is_not(None),
                _tokens.expires_at <= moment,
                _tokens.revoked_at.is_(None),
                ~exists().where(
                    token_expiry_notices.c.token_id == _tokens.id,
                    token_expiry_notices.c.notice == "expired",
                ),
            )
            .order_by(_tokens.expires_at, _tokens.id)
        )
        return [to_token(r) for r in result]

    async def notices_sent(self, token_id: str) -> set[str]:
        result = await self._connection.execute(
            select(token_expiry_notices.c.notice).where(token_expiry_notices.c.token_id == token_id)
        )
        return {str(r.notice) for r in result}

    async def mark_notice(self, token_id: str, notice: str, now: datetime) -> bool:
        try:
            async with self._connection.begin_nested():
                await self._connection.execute(
                    insert(token_expiry_notices).values(
                        token_id=token_id, notice=notice, sent_at=now
                    )
                )
        except IntegrityError:
            return False
        return True
