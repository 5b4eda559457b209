"""What the services need from storage, as protocols the `db` package implements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol

from keyport.domain.audit import Actor, AuditEvent
from keyport.domain.keys import ApiKey, KeyState, KeyStatus
from keyport.domain.personal_tokens import PersonalToken, TokenPolicy
from keyport.domain.principal import Principal
from keyport.domain.users import NewUser, Role, User, UserChanges, UserType
from keyport.domain.webhooks import Delivery, DueDelivery, Endpoint


@dataclass(frozen=True, slots=True)
class Company:
    id: str
    name: str
    created_at: datetime
    require_two_factor: bool = False  # owners and admins must sign in with a second factor


@dataclass(frozen=True, slots=True)
class AuditFilter:
    company_id: str | None = None
    action: str | None = None
    actor_user_id: str | None = None
    target_id: str | None = None
    key_id: str | None = None  # events about the key, or done with it
    target_ids: tuple[str, ...] = ()  # events about any of these (none: no such filter)


@dataclass(frozen=True, slots=True)
class Invitation:
    """A one-time link to join a company; only the SHA-256 of its token is kept."""

    digest: str
    user_id: str
    company_id: str
    created_by: str | None
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class TwoFactorState:
    secret: str | None  # sealed (services.accounts.secret_box): on once set
    pending_secret: str | None  # sealed, shown for setup, not yet confirmed with a code
    last_step: int | None  # the TOTP time step of the newest code accepted


class CompanyRepository(Protocol):
    async def add(self, company_id: str, name: str, now: datetime) -> Company: ...
    async def get(self, company_id: str) -> Company | None: ...
    async def list(self, limit: int = 100) -> Sequence[Company]: ...


class UserRepository(Protocol):
    async def add(
        self,
        user_id: str,
        company_id: str,
        user: NewUser,
        password_hash: str | None,
        now: datetime,
    ) -> User: ...
    async def get(
        self, company_id: str, user_id: str, *, for_update: bool = False
    ) -> User | None: ...
    async def get_any(self, user_id: str) -> User | None: ...
    async def get_by_email(self, email: str) -> tuple[User, str | None] | None: ...
    async def owner_id(self, company_id: str) -> str | None: ...
    async def list(
        self, company_id: str, user_type: UserType | None, limit: int, offset: int
    ) -> tuple[Sequence[User], int]: ...
    async def email_taken(self, email: str) -> bool: ...
    async def slug_taken(self, slug: str, except_user_id: str | None = None) -> bool: ...
    async def update(self, user_id: str, changes: UserChanges, now: datetime) -> None: ...
    async def soft_delete(self, user_id: str, now: datetime) -> None: ...
    async def set_password_hash(self, user_id: str, password_hash: str, now: datetime) -> None: ...


class TeamRepository(Protocol):
    """Invitations, roles, the 2FA requirement and each user's second factor."""

    async def add_invitation(self, invitation: Invitation) -> None: ...
    async def invitation(self, digest: str) -> Invitation | None: ...
    async def use_invitation(self, digest: str, now: datetime) -> bool:
        """Marks it used; False if it already was (of two racing accepts, one wins)."""
        ...

    async def mark_invited(self, user_id: str, now: datetime) -> None: ...
    async def accept(self, user_id: str, password_hash: str, now: datetime) -> None: ...
    async def set_role(self, user_id: str, role: Role, now: datetime) -> None: ...
    async def set_require_two_factor(self, company_id: str, required: bool) -> None: ...
    async def record_sign_in(
        self, user_id: str, now: datetime, place: str | None, forget_before: datetime
    ) -> None:
        """Records a successful sign-in from `place` (domain/client_places.py); places last
        seen before `forget_before` are forgotten."""
        ...

    async def sign_in_standing(
        self, email: str, place: str | None, since: datetime
    ) -> tuple[str | None, bool]:
        """For the account of `email`: its password hash, and whether it signed in from
        `place` at or after `since` ((None, False) for no such account)."""
        ...

    async def two_factor(self, user_id: str) -> TwoFactorState: ...
    async def set_pending_secret(self, user_id: str, sealed: str | None) -> None: ...
    async def enable_two_factor(
        self, user_id: str, sealed: str, step: int, recovery_digests: Sequence[str]
    ) -> None: ...
    async def disable_two_factor(self, user_id: str) -> None: ...
    async def claim_step(self, user_id: str, step: int) -> bool:
        """Records `step` as used unless it, or a later one, already was: no replay."""
        ...

    async def use_recovery_code(self, user_id: str, digest: str, now: datetime) -> bool: ...
    async def recovery_codes_left(self, user_id: str) -> int: ...


class KeyRepository(Protocol):
    async def add(self, key: ApiKey, digest: str) -> None: ...
    async def get(
        self, company_id: str, key_id: str, *, for_update: bool = False
    ) -> ApiKey | None: ...
    async def list(self, company_id: str, limit: int, offset: int) -> Sequence[ApiKey]: ...
    async def count(self, company_id: str) -> int: ...
    async def set_status(self, key_id: str, status: KeyStatus) -> None: ...
    async def set_rate_limit(self, key_id: str, rate_limit: int | None) -> None: ...
    async def mark_rotated(self, key_id: str, successor_id: str, expires_at: datetime) -> None:
        """The key was replaced by `successor_id` and works until `expires_at`."""
        ...

    async def set_name(self, key_id: str, name: str | None) -> None: ...
    async def page(
        self,
        company_id: str,
        state: KeyState | None,
        now: datetime,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> Sequence[ApiKey]:
        """Newest first (created_at, then id, both descending), after the (created_at, id)
        of the previous page's last key; only keys in `state` at `now` if given."""
        ...

    async def company_of(self, key_id: str) -> str | None: ...
    async def set_scopes(self, key_id: str, scopes: tuple[str, ...]) -> None: ...
    async def set_allowed_ips(self, key_id: str, networks: tuple[str, ...]) -> None: ...
    async def principal_by_digest(self, digest: str) -> Principal | None: ...


class TokenRepository(Protocol):
    """Personal access tokens, the company token policy, and the tokens' expiry notices."""

    async def add(self, token: PersonalToken, digest: str) -> None: ...
    async def get(self, token_id: str, *, for_update: bool = False) -> PersonalToken | None: ...
    async def of_user(self, user_id: str) -> Sequence[PersonalToken]:
        """Newest first."""
        ...

    async def page(
        self,
        company_id: str,
        user_id: str | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> Sequence[PersonalToken]:
        """Newest first, after the (created_at, id) of the previous page's last token."""
        ...

    async def revoke(
        self, token_id: str, now: datetime, by: str | None, reason: str | None
    ) -> None: ...
    async def dismiss_notices(self, user_id: str, now: datetime) -> None: ...
    async def policy(self, company_id: str) -> TokenPolicy: ...
    async def set_policy(self, company_id: str, policy: TokenPolicy) -> None: ...
    async def expiring_before(self, moment: datetime) -> Sequence[PersonalToken]: ...
    async def notices_sent(self, token_id: str) -> set[str]: ...
    async def mark_notice(self, token_id: str, notice: str, now: datetime) -> bool:
        """Record the notice; False if it had been recorded already."""
        ...


class AuditRepository(Protocol):
    async def add(
        self,
        *,
        company_id: str | None,
        action: str,
        actor: Actor,
        target_type: str,
        target_id: str | None,
        now: datetime,
        details: dict[str, Any] | None = None,
    ) -> None: ...
    async def list(
        self, filters: AuditFilter, limit: int, offset: int
    ) -> tuple[Sequence[AuditEvent], int]: ...


class WebhookRepository(Protocol):
    """Endpoints, the outbox and the delivery log (services.webhooks.endpoints)."""

    async def add_endpoint(self, endpoint: Endpoint, sealed_secret: str) -> None: ...
    async def endpoints(self, company_id: str) -> Sequence[Endpoint]: ...
    async def get_endpoint(self, endpoint_id: str) -> Endpoint | None: ...
    async def remove_endpoint(self, endpoint_id: str, now: datetime) -> None: ...
    async def disable_endpoint(self, endpoint_id: str, now: datetime) -> bool:
        """False if it was disabled already (two failures at once disable it once)."""
        ...

    async def enqueue(
        self,
        company_id: str,
        event_type: str,
        payload: dict[str, Any],
        message_id: str,
        now: datetime,
    ) -> int:
        """Write the event and one pending delivery per endpoint that wants it."""
        ...

    async def deliveries(self, company_id: str, limit: int) -> Sequence[Delivery]: ...
    async def retry_now(self, company_id: str, delivery_id: int, now: datetime) -> bool: ...
    async def due(self, now: datetime, limit: int) -> Sequence[DueDelivery]: ...
    async def record_success(
        self, delivery_id: int, endpoint_id: str, status_code: int, now: datetime
    ) -> None: ...
    async def record_failure(
        self,
        delivery_id: int,
        endpoint_id: str,
        status_code: int | None,
        error: str,
        now: datetime,
        next_attempt_at: datetime | None,
    ) -> datetime:
        """Returns since when the endpoint has been failing (now, if this is the first)."""
        ...


class ExpiryNotices(Protocol):
    """Which expiry reminders were sent (services.keys.expiry_reminders)."""

    async def keys_expiring_before(self, moment: datetime) -> Sequence[ApiKey]: ...
    async def sent(self, key_id: str) -> set[str]: ...
    async def mark(self, key_id: str, notice: str, now: datetime) -> bool:
        """Record the notice; False if it had been recorded already."""
        ...


class InvalidationLog(Protocol):
    """Cross-process record of cache-relevant changes (see services.access.invalidation)."""

    async def append(self, kind: str, target: str, now: datetime) -> None: ...


class HotPathReader(Protocol):
    """The reads a cache miss on the request path needs, as cheap as the backend allows."""

    async def principal_by_digest(self, digest: str) -> Principal | None: ...
    async def principals_by_digests(self, digests: Sequence[str]) -> dict[str, Principal | None]:
        """Each digest's principal (None where there is none), in as few reads as it can."""
        ...

    async def user_by_id(self, user_id: str) -> User | None: ...
    async def close(self) -> None: ...


class UnitOfWork(Protocol):
    """One transaction: everything done through its repositories commits or none of it."""

    companies: CompanyRepository
    users: UserRepository
    keys: KeyRepository
    tokens: TokenRepository
    audit: AuditRepository
    invalidations: InvalidationLog
    team: TeamRepository
    webhooks: WebhookRepository
    expiry_notices: ExpiryNotices

    async def __aenter__(self) -> UnitOfWork: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
    async def commit(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self, *, write: bool = False) -> UnitOfWork: ...
