"""Two-factor sign-in for the dashboard: setting it up, turning it off, checking codes.

Setting up shows a new secret (and its QR code) and takes effect only once a current code for
it is entered; then 10 recovery codes are shown, once. Turning it off needs a current code.
The operator can reset it (`keyport user reset-2fa`), which also ends the user's sessions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from keyport.domain.audit import Actor, AuditAction
from keyport.domain.clock import Clock
from keyport.domain.errors import Conflict, NotFound, ValidationFailed
from keyport.domain.users import User, normalise_email
from keyport.services import totp
from keyport.services.ports import UnitOfWork, UnitOfWorkFactory
from keyport.services.secret_box import SecretBox, SecretUnreadable
from keyport.services.sessions import SessionService

WRONG_CODE = "is not the current code of your authenticator app"
logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Enrollment:
    """A secret being set up: shown as text and as a QR code of `uri`."""

    secret: str
    uri: str


class TwoFactorService:
    def __init__(
        self, uow: UnitOfWorkFactory, clock: Clock, box: SecretBox, sessions: SessionService
    ) -> None:
        self._uow = uow
        self._clock = clock
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
        now = self._clock.now()
        async with self._uow(write=True) as uow:
            state = await uow.team.two_factor(user.id)
            if state.secret is not None:
                raise Conflict("Two-factor sign-in is already on")
            secret = self._unseal(state.pending_secret)
            if state.pending_secret is None or secret is None:
                raise Conflict("Start setting up two-factor sign-in first")
            step = totp.matching_step(secret, totp.clean_code(code), self._clock.time())
            if step is None:
                raise ValidationFailed.single("code", WRONG_CODE)
            codes = totp.new_recovery_codes()
            await uow.team.enable_two_factor(
                user.id, state.pending_secret, step, [totp.recovery_digest(c) for c in codes]
            )
            await _audit(uow, user, AuditAction.TWO_FACTOR_ENABLED, actor, now)
            await uow.commit()
        return codes

    async def disable(self, user: User, code: str, actor: Actor) -> None:
        now = self._clock.now()
        async with self._uow(write=True) as uow:
            if not await self._accept_totp(uow, user.id, code):
                raise ValidationFailed.single("code", WRONG_CODE)
            await uow.team.disable_two_factor(user.id)
            await _audit(uow, user, AuditAction.TWO_FACTOR_DISABLED, actor, now)
            await uow.commit()

    async def reset(self, email: str, actor: Actor) -> User:
        """The operator's way back in for someone who lost their device."""
        now = self._clock.now()
        async with self._uow(write=True) as uow:
            found = await uow.users.get_by_email(normalise_email(email))
            if found is None:
                raise NotFound("No user with this email")
            user = found[0]
            await uow.team.disable_two_factor(user.id)
            await _audit(uow, user, AuditAction.TWO_FACTOR_RESET, actor, now)
            await uow.commit()
        await self._sessions.end_all(user.id)
        return user

    async def check_sign_in_code(self, user: User, code: str, ip: str | None) -> bool:
        """True for a current, unused TOTP code or an unused recovery code (then used up)."""
        cleaned = totp.clean_code(code)
        now = self._clock.now()
        async with self._uow(write=True) as uow:
            if totp.is_recovery_code(cleaned):
                used = await uow.team.use_recovery_code(user.id, totp.recovery_digest(cleaned), now)
                if used:
                    left = await uow.team.recovery_codes_left(user.id)
                    actor = Actor("user", user_id=user.id, ip=ip)
                    await _audit(
                        uow, user, AuditAction.RECOVERY_CODE_USED, actor, now, {"left": left}
                    )
            else:
                used = await self._accept_totp(uow, user.id, cleaned)
            await uow.commit()
        return used

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


async def _audit(
    uow: UnitOfWork,
    user: User,
    action: AuditAction,
    actor: Actor,
    now: datetime,
    details: dict[str, Any] | None = None,
) -> None:
    await uow.audit.add(
        company_id=user.company_id,
        action=action,
        actor=actor,
        target_type="user",
        target_id=user.id,
        now=now,
        details=details,
    )
