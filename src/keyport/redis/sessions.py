"""Dashboard sessions in Redis (services.accounts.sessions.SessionStore); the SQL store is
keyport.db.sessions.

Both keep a session under the SHA-256 of its token, never the token itself.
"""

from __future__ import annotations

from datetime import datetime

from redis.asyncio import Redis
from redis.typing import EncodableT, FieldT

from keyport.services.accounts.sessions import StoredSession

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
