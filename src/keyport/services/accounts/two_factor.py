"""Two-factor sign-in for the dashboard: setting it up, turning it off, checking codes.

Setting up shows a new secret (and its QR code) and takes effect only once a current code for
it is entered; then 10 recovery codes are shown, once. Turning it off needs a current code.
Each code checked on these pages reserves from the account's sign-in limits first
(services/accounts/sign_in_limiter.py), as a code at sign-in does: a stolen session is no way
to guess codes.
The operator can reset it (`keyport user reset-2fa`), which also ends the user's sessions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from keyport.domain.audit import Actor, AuditAction
from keyport.domain.clock import Clock
from keyport.domain.errors import Conflict, NotFound, ValidationFailed
from keyport.domain.users import User, normalise_email
from keyport.services.accounts import totp
from keyport.services.accounts.secret_box import SecretBox, SecretUnreadable
from keyport.services.accounts.sessions import SessionService
from keyport.services.accounts.sign_in_limiter import SignInLimiter
from keyport.services.ports import UnitOfWork, UnitOfWorkFactory
from keyport.services.runtime.changes import Changes

WRONG_CODE = "is not the current code of your authenticator app"
logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Enrollment:
    """A secret being set up: shown as text and as a QR code of `uri`."""

    secret: str
    uri: str


class TwoFactorService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        box: SecretBox,
        sessions: SessionService,
        limiter: SignInLimiter,
    ) -> None:
        self._uow = uow
        self._limiter = limiter
        self._clock = clock
        self._changes = Changes(uow, clock, "user")  # no cache holds a second factor
        self._box = box
        self._sessions = sessions

    async def begin(self, user: User) -> Enrollment:
        """A new secret to set up (replacing any unconfirmed one)."""
        secret = totp.new_secret()
        async with self._uow(write=True) as uow:
            if (await uow.team.two_factor(user.id)).secret is not None:
                raise Conflict("Two-factor sign-in is already on")
            await uow.team.set_pending_secret(user.id, self._box.seal(secret))
            await uow.commit()
        return Enrollment(secret, totp.provisioning_uri(secret, user.email))

    async def pending(self, user: User) -> Enrollment | None:
        async with self._uow() as uow:
            sealed = (await uow.team.two_factor(user.id)).pending_secret
        secret = self._unseal(sealed)
        if secret is None:
            return None
        return Enrollment(secret, totp.provisioning_uri(secret, user.email))

    async def confirm(self, user: User, code: str, actor: Actor) -> list[str]:
        """Turns it on once `code` is current for the pending secret; the recovery codes."""
        reservation = await self._limiter.reserve(actor.ip, user.email)
        async with self._changes.open() as change:
            uow = change.uow
            state = await uow.team.two_factor(user.id)
            secret = self._unseal(state.pending_secret)
            if state.secret is not None or state.pending_secret is None or secret is None:
                await self._limiter.succeeded(reservation)  # no code was checked
                raise Conflict(
                    "Two-factor sign-in is already on"
                    if state.secret is not None
                    else "Start setting up two-factor sign-in first"
                )
            step = totp.matching_step(secret, totp.clean_code(code), self._clock.time())
            if step is None:
                raise ValidationFailed.single("code", WRONG_CODE)
            codes = totp.new_recovery_codes()
            await uow.team.enable_two_factor(
                user.id, state.pending_secret, step, [totp.recovery_digest(c) for c in codes]
            )
            await change.record(user.company_id, AuditAction.TWO_FACTOR_ENABLED, actor, user.id)
        await self._limiter.succeeded(reservation)
        return codes

    async def disable(self, user: User, code: str, actor: Actor) -> None:
        reservation = await self._limiter.reserve(actor.ip, user.email)
        async with self._changes.open() as change:
            if not await self._accept_totp(change.uow, user.id, code):
                raise ValidationFailed.single("code", WRONG_CODE)
            await change.uow.team.disable_two_factor(user.id)
            await change.record(user.company_id, AuditAction.TWO_FACTOR_DISABLED, actor, user.id)
        await self._limiter.succeeded(reservation)

    async def reset(self, email: str, actor: Actor) -> User:
        """The operator's way back in for someone who lost their device."""
        async with self._changes.open() as change:
            found = await change.uow.users.get_by_email(normalise_email(email))
            if found is None:
                raise NotFound("No user with this email")
            user = found[0]
            await change.uow.team.disable_two_factor(user.id)
            await change.record(user.company_id, AuditAction.TWO_FACTOR_RESET, actor, user.id)
        await self._sessions.end_all(user.id)
        return user

    async def check_sign_in_code(self, user: User, code: str, ip: str | None) -> bool:
        """True for a current, unused TOTP code or an unused recovery code (then used up)."""
        cleaned = totp.clean_code(code)
        async with self._changes.open() as change:  # commits on every way out
            uow = change.uow
            if not totp.is_recovery_code(cleaned):
                return await self._accept_totp(uow, user.id, cleaned)
            digest = totp.recovery_digest(cleaned)
            if not await uow.team.use_recovery_code(user.id, digest, change.now):
                return False
            details = {"left": await uow.team.recovery_codes_left(user.id)}
            actor = Actor("user", user_id=user.id, ip=ip)
            await change.record(
                user.company_id, AuditAction.RECOVERY_CODE_USED, actor, user.id, details
            )
        return True

    async def recovery_codes_left(self, user: User) -> int:
        async with self._uow() as uow:
            return await uow.team.recovery_codes_left(user.id)

    async def _accept_totp(self, uow: UnitOfWork, user_id: str, code: str) -> bool:
        secret = self._unseal((await uow.team.two_factor(user_id)).secret)
        if secret is None:
            return False
        step = totp.matching_step(secret, totp.clean_code(code), self._clock.time())
        return step is not None and await uow.team.claim_step(user_id, step)

    def _unseal(self, sealed: str | None) -> str | None:
        """None when nothing is sealed, or it was sealed under another server secret (then
        the user needs `keyport user reset-2fa`): refused, never a 500."""
        if sealed is None:
            return None
        try:
            return self._box.open(sealed)
        except SecretUnreadable:
            logger.warning("a TOTP secret cannot be opened: was KEYPORT_SECRET_KEY changed?")
            return None
