"""Signing in to and out of the dashboard, with a second step when two-factor is on.

Every failure (unknown email, wrong password, no password set) gives the same answer after
the same work: an unknown email is still verified against a dummy hash. Each attempt reserves
its tokens in the limits (services/accounts/sign_in_limiter.py) before any password is checked,
and every outcome is audited. A session started records where from: the limits spare that
place for 30 days.

With two-factor sign-in on, the right password yields no session but a challenge: a signed,
five-minute statement "this user gave the right password" that the code step needs. Each code
attempt reserves its own place in the same limits, so wrong codes count like wrong passwords.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from keyport.domain.audit import Actor, AuditAction
from keyport.domain.client_places import KNOWN_FOR, place_of
from keyport.domain.clock import Clock
from keyport.domain.errors import KeyportError
from keyport.domain.users import User, normalise_email
from keyport.services.accounts.passwords import MAX_PASSWORD_LENGTH, Passwords
from keyport.services.accounts.secret_box import SecretBox
from keyport.services.accounts.sessions import SessionService, SignedIn
from keyport.services.accounts.sign_in_limiter import SignInLimiter
from keyport.services.accounts.two_factor import TwoFactorService
from keyport.services.ports import UnitOfWorkFactory

MAX_EMAIL_INPUT = 320
CHALLENGE_SECONDS = 300
MAX_CHALLENGE_LENGTH = 256


class SignInRefused(KeyportError):
    message = "Incorrect email or password."


class WrongSecondFactor(KeyportError):
    message = "That code is not right, or was already used. Try the newest code."


class ChallengeOver(KeyportError):
    message = "Your sign-in took too long. Please sign in again."


@dataclass(frozen=True, slots=True)
class SignInStep:
    """Either a session (`session_token`) or a second step to take (`challenge`)."""

    session_token: str | None = None
    challenge: str | None = None


class SignInService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        passwords: Passwords,
        sessions: SessionService,
        limiter: SignInLimiter,
        two_factor: TwoFactorService,
        box: SecretBox,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._passwords = passwords
        self._sessions = sessions
        self._limiter = limiter
        self._two_factor = two_factor
        self._box = box

    async def sign_in(self, email: str, password: str, ip: str | None) -> SignInStep:
        """A session, a challenge for the code step, or SignInRefused / TooManySignInAttempts."""
        email = normalise_email(email)[:MAX_EMAIL_INPUT]
        reservation = await self._limiter.reserve(ip, email)
        user, verified = await self._verify(email, password[: MAX_PASSWORD_LENGTH + 1])
        if user is None or not verified:
            # The typed email is not recorded: people type passwords into email fields.
            reason = "wrong password" if user else "unknown email"
            await self._audit(user, AuditAction.SIGN_IN_FAILED, ip, {"reason": reason})
            raise SignInRefused()
        await self._limiter.succeeded(reservation)  # the password was right: not a failure
        if user.two_factor:
            return SignInStep(challenge=self._challenge(user))
        return SignInStep(session_token=await self._start(user, ip, None))

    async def complete(self, challenge: str, code: str, ip: str | None) -> str:
        """The second step: a new session's token once the code is right."""
        user = await self._challenged_user(challenge)
        reservation = await self._limiter.reserve(ip, user.email)
        if not await self._two_factor.check_sign_in_code(user, code[:64], ip):
            await self._audit(user, AuditAction.SECOND_FACTOR_FAILED, ip)
            raise WrongSecondFactor()  # the reservation is kept: a failure
        await self._limiter.succeeded(reservation)
        return await self._start(user, ip, {"secondFactor": True})

    async def sign_out(self, signed_in: SignedIn, ip: str | None) -> None:
        await self._sessions.end(signed_in)
        await self._audit(signed_in.user, AuditAction.SIGNED_OUT, ip)

    async def _start(self, user: User, ip: str | None, details: dict[str, Any] | None) -> str:
        token = await self._sessions.start(user, ip)
        await self._audit(user, AuditAction.SIGN_IN_SUCCEEDED, ip, details, signed_in=True)
        return token

    def _challenge(self, user: User) -> str:
        expires = int(self._clock.time()) + CHALLENGE_SECONDS
        statement = f"{user.id}.{expires}.{secrets.token_urlsafe(12)}"
        return f"{statement}.{self._box.sign(statement)}"

    async def _challenged_user(self, challenge: str) -> User:
        parts = challenge[:MAX_CHALLENGE_LENGTH].split(".")
        if len(parts) != 4 or not self._box.signature_matches(".".join(parts[:3]), parts[3]):
            raise ChallengeOver()
        user_id, expires = parts[0], parts[1]
        if not expires.isdigit() or int(expires) <= self._clock.time():
            raise ChallengeOver()
        async with self._uow() as uow:
            user = await uow.users.get_any(user_id)
        if user is None or not user.two_factor:
            raise ChallengeOver()
        return user

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
        details: dict[str, Any] | None = None,
        *,
        signed_in: bool = False,
    ) -> None:
        user_id = user.id if user else None
        now = self._clock.now()
        async with self._uow(write=True) as uow:
            await uow.audit.add(
                company_id=user.company_id if user else None,
                action=action,
                actor=Actor("user", user_id=user_id, ip=ip),
                target_type="user",
                target_id=user_id,
                now=now,
                details=details,
            )
            if signed_in and user_id is not None:
                await uow.team.record_sign_in(user_id, now, place_of(ip), now - KNOWN_FOR)
            await uow.commit()
