"""Dashboard session stores (services.sessions.SessionStore): a SQL table, or Redis.

Both keep a session under the SHA-256 of its token, never the token itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from redis.asyncio import Redis
from redis.typing import EncodableT, FieldT
from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from keyport.db.engine import WRITE_OPTION
from keyport.db.tables import admin_sessions
from keyport.services.sessions import StoredSession

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


# KEYS[1] = session hash; ARGV[1] = nonce. Sets it unless it is already the last one.
_CLAIM_FORM = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HGET', KEYS[1], 'form_nonce') == ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'form_nonce', ARGV[1])
return 1
"""


class RedisSessionStore:
    """Sessions as Redis hashes that expire on their own when idle or too old."""

    def __init__(self, redis: Redis, *, prefix: str = "keyport:") -> None:
        self._redis = redis
        self._prefix = prefix

    def _key(self, session_id: str) -> str:
        return f"{self._prefix}session:{session_id}"

    def _user_key(self, user_id: str) -> str:
        """The set of a user's session ids, so that all of them can be ended at once."""
        return f"{self._prefix}user-sessions:{user_id}"

    async def add(self, session: StoredSession, ttl: float) -> None:
        fields: dict[FieldT, EncodableT] = {
            "user_id": session.user_id,
            "csrf_token": session.csrf_token,
            "ip": session.ip or "",
            "created_at": session.created_at.isoformat(),
            "last_seen_at": session.last_seen_at.isoformat(),
            "expires_at": session.expires_at.isoformat(),
        }
        user_key = self._user_key(session.user_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._key(session.id), mapping=fields)
            pipe.pexpire(self._key(session.id), int(ttl * 1000))
            pipe.sadd(user_key, session.id)
            # The index outlives every session in it (each ends by its absolute expiry).
            pipe.expire(
                user_key, int((session.expires_at - session.created_at).total_seconds()) + 60
            )
            await pipe.execute()

    async def get(self, session_id: str) -> StoredSession | None:
        raw = await self._redis.hgetall(self._key(session_id))
        fields = {_text(k): _text(v) for k, v in raw.items()}
        if "user_id" not in fields:
            return None
        return StoredSession(
            id=session_id,
            user_id=fields["user_id"],
            csrf_token=fields["csrf_token"],
            ip=fields["ip"] or None,
            created_at=datetime.fromisoformat(fields["created_at"]),
            last_seen_at=datetime.fromisoformat(fields["last_seen_at"]),
            expires_at=datetime.fromisoformat(fields["expires_at"]),
        )

    async def touch(self, session_id: str, seen_at: datetime, ttl: float) -> None:
        key = self._key(session_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, "last_seen_at", seen_at.isoformat())
            pipe.pexpire(key, int(ttl * 1000), xx=True)
            await pipe.execute()

    async def claim_form(self, session_id: str, nonce: str) -> bool:
        claimed = await self._redis.eval(_CLAIM_FORM, 1, self._key(session_id), nonce)
        return bool(claimed)

    async def delete(self, session_id: str) -> None:
        await self._redis.delete(self._key(session_id))

    async def delete_for_user(self, user_id: str, keep: str | None) -> None:
        user_key = self._user_key(user_id)
        ids = {_text(member) for member in await self._redis.smembers(user_key)}
        ids.discard(keep or "")
        if not ids:
            return
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(*(self._key(session_id) for session_id in ids))
            pipe.srem(user_key, *ids)
            await pipe.execute()

    async def prune(self, now: datetime, idle_since: datetime) -> None:
        """Nothing to do: Redis expires idle and old sessions itself."""


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
