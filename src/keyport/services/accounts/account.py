"""A signed-in user's own account: changing the password.

A new password ends every other session of the user: whoever else held one (a stolen cookie,
a forgotten browser) must sign in again with the new password. The current password is checked
under the account's sign-in limits (services/accounts/sign_in_limiter.py), as at sign-in: a
stolen session is no way to guess it.
"""

from __future__ import annotations

from keyport.domain.audit import Actor, AuditAction
from keyport.domain.clock import Clock
from keyport.domain.errors import ValidationFailed
from keyport.services.accounts.passwords import MAX_PASSWORD_LENGTH, Passwords
from keyport.services.accounts.sessions import SessionService, SignedIn
from keyport.services.accounts.sign_in_limiter import SignInLimiter
from keyport.services.ports import UnitOfWorkFactory
from keyport.services.runtime.changes import Changes

WRONG_CURRENT = "is wrong"


class AccountService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        passwords: Passwords,
        sessions: SessionService,
        limiter: SignInLimiter,
    ) -> None:
        self._uow = uow
        self._limiter = limiter
        self._changes = Changes(uow, clock, "user")  # no cache holds passwords
        self._passwords = passwords
        self._sessions = sessions

    async def change_password(
        self, signed_in: SignedIn, current: str, new: str, actor: Actor
    ) -> None:
        """TooManySignInAttempts before the current password is checked, when the account's
        limits are spent; a wrong one counts as a failed sign-in."""
        user = signed_in.user
        reservation = await self._limiter.reserve(actor.ip, user.email)
        async with self._uow() as uow:
            found = await uow.users.get_by_email(user.email)
        current_hash = found[1] if found is not None else None
        if not await self._passwords.verify(current_hash, current[: MAX_PASSWORD_LENGTH + 1]):
            raise ValidationFailed.single("current_password", WRONG_CURRENT)
        await self._limiter.succeeded(reservation)
        new_hash = await self._passwords.hash(new)
        async with self._changes.open() as change:
            await change.uow.users.set_password_hash(user.id, new_hash, change.now)
            await change.record(user.company_id, AuditAction.PASSWORD_CHANGED, actor, user.id)
        await self._sessions.end_all(user.id, keep=signed_in)
