"""Dashboard sessions: server-side, found by the hash of the cookie's token.

The cookie carries a random token; the store keeps only its SHA-256, so a copy of the store
signs nobody in. A session ends when it is deleted (sign-out), after `idle` without a request,
or `absolute` after sign-in, whichever comes first. The user and company are read again on
every request, so a role change or a deleted user takes effect at once. Each session has a
CSRF token (the synchronizer token of every dashboard form) and remembers the last create-key
form it accepted, so that re-sending that form cannot issue a second key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from keyport.domain.audit import Actor
from keyport.domain.clock import Clock
from keyport.domain.users import User
from keyport.services.ports import Company, UnitOfWorkFactory

MAX_TOKEN_LENGTH = 128


@dataclass(frozen=True, slots=True)
class StoredSession:
    id: str  # SHA-256 of the cookie token, hex
    user_id: str
    csrf_token: str
    ip: str | None
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime  # the absolute end, whatever the activity


class SessionStore(Protocol):
    """Where sessions live: a database table by default, Redis when configured."""

    async def add(self, session: StoredSession, ttl: float) -> None: ...
    async def get(self, session_id: str) -> StoredSession | None: ...
    async def touch(self, session_id: str, seen_at: datetime, ttl: float) -> None: ...
    async def claim_form(self, session_id: str, nonce: str) -> bool:
        """Remember `nonce` as the last accepted form; False if it already was."""
        ...

    async def delete(self, session_id: str) -> None: ...
    async def delete_for_user(self, user_id: str, keep: str | None) -> None:
        """Ends every session of the user but `keep` (a session id), if given."""
        ...

    async def prune(self, now: datetime, idle_since: datetime) -> None: ...


@dataclass(frozen=True, slots=True)
class SessionTimeouts:
    idle: timedelta
    absolute: timedelta
    # Writing last-seen on every request is wasteful; idle time is exact to this much.
    touch_every: timedelta = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A live session with its user and company as they are now."""

    session: StoredSession
    user: User
    company: Company

    @property
    def csrf_token(self) -> str:
        return self.session.csrf_token

    def csrf_matches(self, submitted: str | None) -> bool:
        return submitted is not None and hmac.compare_digest(
            submitted.encode(), self.session.csrf_token.encode()
        )

    def actor(self, ip: str | None) -> Actor:
        return Actor("user", user_id=self.user.id, ip=ip)


def session_id(token: str) -> str:
    """SHA-256 of the token. A fast hash is right: the token is 256 random bits."""
    return hashlib.sha256(token.encode()).hexdigest()


class SessionService:
    def __init__(
        self,
        store: SessionStore,
        uow: UnitOfWorkFactory,
        clock: Clock,
        timeouts: SessionTimeouts,
    ) -> None:
        self._store = store
        self._uow = uow
        self._clock = clock
        self._timeouts = timeouts

    async def start(self, user: User, ip: str | None) -> str:
        """A new session for `user`; returns the token for the cookie (never stored)."""
        now = self._clock.now()
        await self._store.prune(now, now - self._timeouts.idle)
        token = secrets.token_urlsafe(32)
        session = StoredSession(
            id=session_id(token),
            user_id=user.id,
            csrf_token=secrets.token_urlsafe(32),
            ip=ip,
            created_at=now,
            last_seen_at=now,
            expires_at=now + self._timeouts.absolute,
        )
        await self._store.add(session, self._ttl(session, now))
        return token

    async def resolve(self, token: str | None) -> SignedIn | None:
        """The signed-in user behind a cookie token, or None if the session is over."""
        if not token or len(token) > MAX_TOKEN_LENGTH:
            return None
        session = await self._store.get(session_id(token))
        if session is None:
            return None
        now = self._clock.now()
        if self._is_over(session, now):
            await self._store.delete(session.id)
            return None
        async with self._uow() as uow:
            user = await uow.users.get_any(session.user_id)
            company = await uow.companies.get(user.company_id) if user else None
        if user is None or company is None:
            await self._store.delete(session.id)
            return None
        if now - session.last_seen_at >= self._timeouts.touch_every:
            session = replace(session, last_seen_at=now)
            await self._store.touch(session.id, now, self._ttl(session, now))
        return SignedIn(session, user, company)

    async def end(self, signed_in: SignedIn) -> None:
        await self._store.delete(signed_in.session.id)

    async def end_all(self, user_id: str, *, keep: SignedIn | None = None) -> None:
        """Signs the user out everywhere (but in `keep`): after a password change or reset,
        a removal, or a second factor reset. Effective at the sessions' next request."""
        await self._store.delete_for_user(user_id, keep.session.id if keep else None)

    async def claim_form(self, signed_in: SignedIn, nonce: str) -> bool:
        """True the first time a form nonce is submitted in this session, then False."""
        if not nonce or len(nonce) > MAX_TOKEN_LENGTH:
            return False
        return await self._store.claim_form(signed_in.session.id, nonce)

    def _is_over(self, session: StoredSession, now: datetime) -> bool:
        return session.expires_at <= now or session.last_seen_at + self._timeouts.idle <= now

    def _ttl(self, session: StoredSession, now: datetime) -> float:
        idle_end = session.last_seen_at + self._timeouts.idle
        return max(1.0, (min(idle_end, session.expires_at) - now).total_seconds())
