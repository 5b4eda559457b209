"""Dashboard sessions in a SQL table (services.accounts.sessions.SessionStore); the Redis store is
keyport.redis.sessions.

Both keep a session under the SHA-256 of its token, never the token itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from keyport.db.engine import WRITE_OPTION
from keyport.db.tables import admin_sessions
from keyport.services.accounts.sessions import StoredSession

_sessions = admin_sessions.c


def _to_session(row: Any) -> StoredSession:
    return StoredSession(
        id=row.id,
        user_id=row.user_id,
        csrf_token=row.csrf_token,
        ip=row.ip,
        created_at=row.created_at,
        last_seen_at=row.last_seen_at,
        expires_at=row.expires_at,
    )


class SqlSessionStore:
    """The default: the `admin_sessions` table, shared by every process on the database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncConnection]:
        async with self._engine.connect() as connection:
            connection = await connection.execution_options(**{WRITE_OPTION: True})
            async with connection.begin():
                yield connection

    async def add(self, session: StoredSession, ttl: float) -> None:
        async with self._writing() as connection:
            await connection.execute(
                insert(admin_sessions).values(
                    id=session.id,
                    user_id=session.user_id,
                    csrf_token=session.csrf_token,
                    ip=session.ip,
                    created_at=session.created_at,
                    last_seen_at=session.last_seen_at,
                    expires_at=session.expires_at,
                )
            )

    async def get(self, session_id: str) -> StoredSession | None:
        async with self._engine.connect() as connection:
            row = (
                await connection.execute(select(admin_sessions).where(_sessions.id == session_id))
            ).first()
        return _to_session(row) if row else None

    async def touch(self, session_id: str, seen_at: datetime, ttl: float) -> None:
        async with self._writing() as connection:
            await connection.execute(
                update(admin_sessions)
                .where(_sessions.id == session_id)
                .values(last_seen_at=seen_at)
            )

    async def claim_form(self, session_id: str, nonce: str) -> bool:
        # One conditional UPDATE: two requests with the same nonce cannot both succeed.
        async with self._writing() as connection:
            result = await connection.execute(
                update(admin_sessions)
                .where(
                    _sessions.id == session_id,
                    or_(_sessions.form_nonce.is_(None), _sessions.form_nonce != nonce),
                )
                .values(form_nonce=nonce)
            )
        return bool(result.rowcount)

    async def delete(self, session_id: str) -> None:
        async with self._writing() as connection:
            await connection.execute(delete(admin_sessions).where(_sessions.id == session_id))

    async def delete_for_user(self, user_id: str, keep: str | None) -> None:
        condition = _sessions.user_id == user_id
        if keep is not None:
            condition = and_(condition, _sessions.id != keep)
        async with self._writing() as connection:
            await connection.execute(delete(admin_sessions).where(condition))

    async def prune(self, now: datetime, idle_since: datetime) -> None:
        async with self._writing() as connection:
            await connection.execute(
                delete(admin_sessions).where(
                    or_(_sessions.expires_at <= now, _sessions.last_seen_at <= idle_since)
                )
            )
