"""Personal access tokens: create, list, revoke and regenerate, and the company's token policy.

A token belongs to one user and acts as that user. Its user creates, regenerates and revokes
it; owners and admins may revoke any token of their company (its user then sees a notice).
Every change is audited, queues its webhook event and is evicted from every process's cache in
the same sequence as a key's change (services/runtime/changes.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from keyport.domain import personal_tokens as rules
from keyport.domain.audit import Actor, AuditAction
from keyport.domain.clock import Clock
from keyport.domain.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from keyport.domain.keys import validate_allowed_ips
from keyport.domain.personal_tokens import IssuedToken, PersonalToken, TokenPolicy, TokenState
from keyport.domain.users import User, normalise_email, parse_uuid
from keyport.domain.webhooks import EventType
from keyport.services.access.cache import COMPANY, KEY
from keyport.services.access.invalidation import Invalidator
from keyport.services.ports import UnitOfWork, UnitOfWorkFactory
from keyport.services.runtime.changes import Change, Changes
from keyport.services.webhooks.endpoints import emit

NOT_FOUND = "Personal access token not found"
NAME_TAKEN = "you already have a live token with this name"
ALREADY_REVOKED = "Personal access token is already revoked"


@dataclass(frozen=True, slots=True)
class TokenView:
    """A token with what its company's policy says of it now."""

    token: PersonalToken
    state: TokenState
    owner_label: str = ""  # its user's name, for the team's list


@dataclass(frozen=True, slots=True)
class PolicyOutcome:
    policy: TokenPolicy
    longer: Sequence[PersonalToken]  # live tokens that outlive the new maximum (they keep it)


def _may_manage(acting: User, token: PersonalToken) -> bool:
    return acting.id == token.user_id or (acting.is_admin and acting.company_id == token.company_id)


class PersonalTokenService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, invalidator: Invalidator) -> None:
        self._uow = uow
        self._clock = clock
        self._changes = Changes(uow, clock, "personal_access_token", (KEY, invalidator))
        self._policies = Changes(uow, clock, "company", (COMPANY, invalidator))

    async def issue(
        self, user: User, *, name: object, days: object, scopes: object, actor: Actor
    ) -> IssuedToken:
        """A new token for `user`; the returned `token` is the only time it exists in full."""
        clean_name = rules.validate_name(name)
        valid_days = rules.validate_days(days)
        valid_scopes = rules.validate_token_scopes(scopes)
        async with self._changes.open() as change:
            now = change.now
            policy = await change.uow.tokens.policy(user.company_id)
            rules.check_creatable(policy)
            expires_at = rules.expiry(now, valid_days, policy)
            await self._check_name_free(change.uow, user.id, clean_name, now)
            secret = rules.generate_token()
            record = PersonalToken(
                id=str(uuid.uuid4()),
                company_id=user.company_id,
                user_id=user.id,
                name=clean_name,
                hint=rules.hint(secret),
                scopes=valid_scopes,
                created_at=now,
                expires_at=expires_at,
            )
            await change.uow.tokens.add(record, rules.digest(secret))
            details = {
                "name": clean_name,
                "userId": user.id,
                "expiresAt": expires_at.isoformat() if expires_at else None,
                "scopes": list(valid_scopes),
            }
            await change.record(
                user.company_id, AuditAction.TOKEN_CREATED, actor, record.id, details
            )
            data = rules.token_object(record, now, policy.allow)
            await emit(change.uow, user.company_id, EventType.TOKEN_CREATED, data, now)
        return IssuedToken(record, secret)

    async def regenerate(self, acting: User | None, token_id: str, actor: Actor) -> IssuedToken:
        """A new secret and expiry (the same lifetime, within today's maximum) for the same
        name and scopes; the old token is revoked at once. `acting` None: the operator."""
        old = await self.get(acting, token_id)
        user = await self._user(old.user_id)
        await self.revoke(acting, old.id, actor)
        days = rules.days_between(old.created_at, old.expires_at)
        return await self.issue(
            user, name=old.name, days=days, scopes=list(old.scopes), actor=actor
        )

    async def revoke(
        self, acting: User | None, token_id: str, actor: Actor, *, company_id: str | None = None
    ) -> PersonalToken:
        """Revoke a token: its user, an owner or admin of its company (`acting`), or the
        operator at the CLI (`acting` None). Revoking a revoked token is a Conflict."""
        async with self._changes.open() as change:
            token = await self._find(change.uow, token_id, for_update=True)
            if company_id is not None and token.company_id != company_id:
                raise NotFound(NOT_FOUND)
            if acting is not None and not _may_manage(acting, token):
                raise NotFound(NOT_FOUND)
            if token.revoked_at is not None:
                raise Conflict(ALREADY_REVOKED)
            by_other = acting is None or acting.id != token.user_id
            by = acting.id if acting is not None and by_other else None
            reason = _revoke_reason(acting, actor) if by_other else None
            await change.uow.tokens.revoke(token.id, change.now, by, reason)
            details = {"userId": token.user_id, "name": token.name}
            await change.record(
                token.company_id, AuditAction.TOKEN_REVOKED, actor, token.id, details, evict=True
            )
            revoked = replace(token, revoked_at=change.now, revoked_by=by, revoke_reason=reason)
            await self._emit(change, revoked, EventType.TOKEN_REVOKED)
        return revoked

    async def get(self, acting: User | None, token_id: str) -> PersonalToken:
        async with self._uow() as uow:
            token = await self._find(uow, token_id)
        if acting is not None and not _may_manage(acting, token):
            raise NotFound(NOT_FOUND)
        return token

    async def get_in_company(self, company_id: str, token_id: str) -> TokenView:
        async with self._uow() as uow:
            token = await self._find(uow, token_id)
            if token.company_id != company_id:
                raise NotFound(NOT_FOUND)
            policy = await uow.tokens.policy(company_id)
        return TokenView(token, token.state(self._clock.now(), policy.allow))

    async def own(self, user: User) -> list[TokenView]:
        async with self._uow() as uow:
            found = await uow.tokens.of_user(user.id)
            policy = await uow.tokens.policy(user.company_id)
        now = self._clock.now()
        return [TokenView(t, t.state(now, policy.allow)) for t in found]

    async def team(self, acting: User) -> list[TokenView]:
        """Every live token of the acting owner's or admin's company, with its user's name."""
        if not acting.is_admin:
            raise PermissionDenied("Only owners and admins can see the team's tokens")
        async with self._uow() as uow:
            found = await uow.tokens.page(acting.company_id, None, None, 500)
            policy = await uow.tokens.policy(acting.company_id)
            users = {u.id: u for u in (await uow.users.list(acting.company_id, None, 500, 0))[0]}
        now = self._clock.now()
        views = []
        for token in found:
            state = token.state(now, policy.allow)
            if state in (TokenState.ACTIVE, TokenState.DISABLED):
                owner = users.get(token.user_id)
                label = owner.full_name or owner.email if owner else token.user_id
                views.append(TokenView(token, state, label))
        return views

    async def page(
        self,
        company_id: str,
        user_id: str | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> tuple[list[TokenView], bool]:
        """A page of the company's tokens, newest first, and whether more follow."""
        async with self._uow() as uow:
            found = await uow.tokens.page(company_id, user_id, after, limit + 1)
            policy = await uow.tokens.policy(company_id)
        now = self._clock.now()
        views = [TokenView(t, t.state(now, policy.allow)) for t in found[:limit]]
        return views, len(found) > limit

    async def user_by_email(self, email: str) -> User:
        async with self._uow() as uow:
            found = await uow.users.get_by_email(normalise_email(email))
        if found is None:
            raise NotFound("No user with this email")
        return found[0]

    async def notices(self, user: User) -> list[PersonalToken]:
        """The user's tokens revoked by someone else, not yet dismissed."""
        async with self._uow() as uow:
            found = await uow.tokens.of_user(user.id)
        return [t for t in found if t.revoke_reason and not t.notice_dismissed]

    async def dismiss_notices(self, user: User) -> None:
        async with self._uow(write=True) as uow:
            await uow.tokens.dismiss_notices(user.id, self._clock.now())
            await uow.commit()

    async def policy(self, company_id: str) -> TokenPolicy:
        async with self._uow() as uow:
            return await uow.tokens.policy(company_id)

    async def set_policy(
        self,
        company_id: str,
        actor: Actor,
        *,
        allow: bool | None = None,
        max_days: object = ...,
        allowed_ips: object = None,
    ) -> PolicyOutcome:
        """Change what is given (`max_days` None: no maximum; `...`: unchanged; `allowed_ips`
        None: unchanged, []: anywhere). Every process obeys within a second."""
        networks = None if allowed_ips is None else validate_allowed_ips(allowed_ips)
        async with self._policies.open() as change:
            if await change.uow.companies.get(company_id) is None:
                raise NotFound("Company not found")
            current = await change.uow.tokens.policy(company_id)
            policy = TokenPolicy(
                current.allow if allow is None else allow,
                current.max_days if max_days is ... else rules.validate_max_days(max_days),
                current.allowed_ips if networks is None else networks,
            )
            await change.uow.tokens.set_policy(company_id, policy)
            details = {
                "allow": policy.allow,
                "maxDays": policy.max_days,
                "allowedIps": list(policy.allowed_ips),
            }
            await change.record(
                company_id, AuditAction.TOKEN_POLICY_SET, actor, company_id, details, evict=True
            )
            longer = await self._longer_than(change.uow, company_id, policy, change.now)
        return PolicyOutcome(policy, longer)

    @staticmethod
    async def _longer_than(
        uow: UnitOfWork, company_id: str, policy: TokenPolicy, now: datetime
    ) -> list[PersonalToken]:
        if policy.max_days is None:
            return []
        found = await uow.tokens.page(company_id, None, None, 1000)
        limit = rules.expiry(now, policy.max_days, policy)
        assert limit is not None
        return [
            t for t in found if t.is_live(now) and (t.expires_at is None or t.expires_at > limit)
        ]

    async def _user(self, user_id: str) -> User:
        async with self._uow() as uow:
            user = await uow.users.get_any(user_id)
        if user is None:
            raise NotFound("User not found")
        return user

    @staticmethod
    async def _check_name_free(uow: UnitOfWork, user_id: str, name: str, now: datetime) -> None:
        for token in await uow.tokens.of_user(user_id):
            if token.name.casefold() == name.casefold() and token.is_live(now):
                raise ValidationFailed.single("name", NAME_TAKEN)

    @staticmethod
    async def _emit(change: Change, token: PersonalToken, event: EventType) -> None:
        policy = await change.uow.tokens.policy(token.company_id)
        data = rules.token_object(token, change.now, policy.allow)
        await emit(change.uow, token.company_id, event, data, change.now)

    @staticmethod
    async def _find(uow: UnitOfWork, token_id: str, *, for_update: bool = False) -> PersonalToken:
        canonical = parse_uuid(token_id)
        found = await uow.tokens.get(canonical, for_update=for_update) if canonical else None
        if found is None:
            raise NotFound(NOT_FOUND)
        return found


def _revoke_reason(acting: User | None, actor: Actor) -> str:
    if acting is not None:
        return f"revoked by {acting.full_name or acting.email}"
    if actor.label == "api_key":
        return "revoked with a company API key"
    return "revoked by an operator"
