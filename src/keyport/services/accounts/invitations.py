"""Inviting someone to the dashboard with a one-time link, and accepting it.

Inviting creates the user at once (listed on the team page, unable to sign in: no password)
and a link `<public URL>/admin/invite/<token>` valid for 72 hours and one use. Only the
SHA-256 of the token is stored (256 random bits, so a fast hash is right); the link is shown
once. Accepting sets the password (the usual rules) and signs the invitee in.

Emails are global, so inviting an address used in another company answers 409: each invitation
by a dashboard user takes a token from that user's lookup budget (services/access/
lookup_limits.py) once the form is valid, as each user creation by an API key does.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass, replace

from keyport.domain import team as rules
from keyport.domain.audit import Actor, AuditAction
from keyport.domain.client_places import KNOWN_FOR, place_of
from keyport.domain.clock import Clock
from keyport.domain.errors import Gone, NotFound, ValidationFailed
from keyport.domain.users import NewUser, Role, User, UserChanges
from keyport.services.access.lookup_limits import LookupLimiter
from keyport.services.accounts.passwords import Passwords
from keyport.services.accounts.sessions import SessionService
from keyport.services.accounts.users import ensure_unique
from keyport.services.ports import Company, Invitation, UnitOfWork, UnitOfWorkFactory
from keyport.services.runtime.changes import Changes

INVITE_PATH = "/admin/invite/"
MAX_TOKEN_LENGTH = 128
USED = "This invitation has already been used. Sign in, or ask for a new invitation."
EXPIRED = "This invitation has expired. Ask whoever invited you for a new one."
UNKNOWN = "There is no invitation at this address. Check that the whole link was copied."


@dataclass(frozen=True, slots=True)
class IssuedInvitation:
    user: User
    url: str  # shown once: only its digest is stored


@dataclass(frozen=True, slots=True)
class OpenInvitation:
    """A link that may still be accepted, with whom it is for."""

    invitation: Invitation
    user: User
    company: Company


@dataclass(frozen=True, slots=True)
class Invitee:
    email: str
    role: Role
    given_name: str = ""
    family_name: str = ""

    def validated(self) -> NewUser:
        if self.role not in rules.ASSIGNABLE_ROLES:
            raise ValidationFailed.single("role", "must be admin or member")
        return self.as_new_user().validated()

    def as_new_user(self) -> NewUser:
        # Names are optional when inviting; the invitee confirms them when accepting.
        local_part = self.email.strip().split("@", 1)[0] or "New"
        return NewUser(
            self.email,
            self.given_name.strip() or local_part,
            self.family_name.strip() or "-",
            "UTC",
            role=self.role,
        )


def invitation_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class InvitationService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        passwords: Passwords,
        sessions: SessionService,
        public_url: str,
        lookups: LookupLimiter,
    ) -> None:
        self._uow = uow
        self._lookups = lookups
        self._clock = clock
        self._changes = Changes(uow, clock, "user")  # a new or invited user is in no cache
        self._passwords = passwords
        self._sessions = sessions
        self._public_url = public_url.rstrip("/")

    @property
    def link_base(self) -> str:
        """What invitation links start with (KEYPORT_PUBLIC_URL, or where the server runs)."""
        return self._public_url

    async def invite(self, acting: User, invitee: Invitee, actor: Actor) -> IssuedInvitation:
        """A dashboard user's invitation: it counts against their lookup budget."""
        rules.check_invitation(acting, invitee.role)
        valid = invitee.validated()
        await self._lookups.spend_by_user(acting.id)
        return await self._invite(acting.company_id, valid, actor, invited_by=acting.id)

    async def invite_to(self, company_id: str, invitee: Invitee, actor: Actor) -> IssuedInvitation:
        """The operator's `keyport user invite` (no acting user, no budget)."""
        return await self._invite(company_id, invitee.validated(), actor, invited_by=None)

    async def _invite(
        self, company_id: str, valid: NewUser, actor: Actor, *, invited_by: str | None
    ) -> IssuedInvitation:
        token = secrets.token_urlsafe(32)
        async with self._changes.open() as change:
            uow, now = change.uow, change.now
            if await uow.companies.get(company_id) is None:
                raise NotFound("Company not found")
            await ensure_unique(uow, valid.email, None, None)
            added = await uow.users.add(str(uuid.uuid4()), company_id, valid, None, now)
            await uow.team.mark_invited(added.id, now)
            user = replace(added, invited=True)
            await uow.team.add_invitation(
                Invitation(
                    invitation_digest(token),
                    user.id,
                    company_id,
                    invited_by,
                    now,
                    now + rules.INVITATION_LIFETIME,
                )
            )
            details = {"email": user.email, "role": user.role.value}
            await change.record(company_id, AuditAction.USER_INVITED, actor, user.id, details)
        return IssuedInvitation(user, f"{self._public_url}{INVITE_PATH}{token}")

    async def open_invitation(self, token: str) -> OpenInvitation:
        """The invitation behind a link: NotFound if unknown, Gone if used or expired."""
        async with self._uow() as uow:
            return await self._open(uow, token)

    async def accept(
        self,
        token: str,
        password: str,
        names: UserChanges,
        ip: str | None,
    ) -> tuple[User, str]:
        """Sets the password and names; returns the user and a new session's token."""
        valid_names = names.validated()
        password_hash = await self._passwords.hash(password)
        async with self._changes.open() as change:
            uow, now = change.uow, change.now
            found = await self._open(uow, token)
            if not await uow.team.use_invitation(found.invitation.digest, now):
                raise Gone(USED)  # accepted by a racing request a moment ago
            await uow.team.accept(found.user.id, password_hash, now)
            if not valid_names.is_empty:
                await uow.users.update(found.user.id, valid_names, now)
            await uow.team.record_sign_in(found.user.id, now, place_of(ip), now - KNOWN_FOR)
            await change.record(
                found.company.id,
                AuditAction.INVITATION_ACCEPTED,
                Actor("user", user_id=found.user.id, ip=ip),
                found.user.id,
                {"email": found.user.email},
            )
            user = await uow.users.get_any(found.user.id)
        assert user is not None
        return user, await self._sessions.start(user, ip)

    async def _open(self, uow: UnitOfWork, token: str) -> OpenInvitation:
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise NotFound(UNKNOWN)
        invitation = await uow.team.invitation(invitation_digest(token))
        if invitation is None:
            raise NotFound(UNKNOWN)
        if invitation.used_at is not None:
            raise Gone(USED)
        if invitation.expires_at <= self._clock.now():
            raise Gone(EXPIRED)
        user = await uow.users.get(invitation.company_id, invitation.user_id)
        company = await uow.companies.get(invitation.company_id)
        if user is None or company is None or not user.invited:
            raise Gone(USED)  # the user was removed, or got in another way
        return OpenInvitation(invitation, user, company)
