"""Signing in to and out of the dashboard.

Every failure (unknown email, wrong password, no password set) gives the same answer after
the same work: an unknown email is still verified against a dummy hash. Each attempt reserves
its place in the limits (services/attempts.py) before any password is checked, and every
outcome is audited.
"""

from __future__ import annotations

from keyport.domain.audit import Actor, AuditAction
from keyport.domain.clock import Clock
from keyport.domain.errors import KeyportError
from keyport.domain.users import User, normalise_email
from keyport.services.attempts import SignInLimiter
from keyport.services.passwords import MAX_PASSWORD_LENGTH, Passwords
from keyport.services.ports import UnitOfWorkFactory
from keyport.services.sessions import SessionService, SignedIn

MAX_EMAIL_INPUT = 320


class SignInRefused(KeyportError):
    message = "Incorrect email or password."


class SignInService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        passwords: Passwords,
        sessions: SessionService,
        limiter: SignInLimiter,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._passwords = passwords
        self._sessions = sessions
        self._limiter = limiter

    async def sign_in(self, email: str, password: str, ip: str | None) -> str:
        """A new session's token, or SignInRefused / TooManySignInAttempts."""
        email = normalise_email(email)[:MAX_EMAIL_INPUT]
        reservation = await self._limiter.reserve(ip, email)
        await self._limiter.wait(reservation)
        user, verified = await self._verify(email, password[: MAX_PASSWORD_LENGTH + 1])
        if user is None or not verified:
            # The typed email is not recorded: people type passwords into email fields.
            reason = "wrong password" if user else "unknown email"
            await self._audit(user, AuditAction.SIGN_IN_FAILED, ip, {"reason": reason})
            raise SignInRefused()
        await self._limiter.succeeded(reservation)
        token = await self._sessions.start(user, ip)
        await self._audit(user, AuditAction.SIGN_IN_SUCCEEDED, ip)
        return token

    async def sign_out(self, signed_in: SignedIn, ip: str | None) -> None:
        await self._sessions.end(signed_in)
        await self._audit(signed_in.user, AuditAction.SIGNED_OUT, ip)

    async def _verify(self, email: str, password: str) -> tuple[User | None, bool]:
        found = None
        if email.isprintable():  # no stored email has a control character (PostgreSQL: no NUL)
            async with self._uow() as uow:
                found = await uow.users.get_by_email(email)
        user, password_hash = found if found is not None else (None, None)
        return user, await self._passwords.verify(password_hash, password)

    async def _audit(
        self,
        user: User | None,
        action: AuditAction,
        ip: str | None,
        details: dict[str, str] | None = None,
    ) -> None:
        user_id = user.id if user else None
        async with self._uow(write=True) as uow:
            await uow.audit.add(
                company_id=user.company_id if user else None,
                action=action,
                actor=Actor("user", user_id=user_id, ip=ip),
                target_type="user",
                target_id=user_id,
                now=self._clock.now(),
                details=details,
            )
            await uow.commit()
