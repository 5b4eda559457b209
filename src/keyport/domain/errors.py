"""Every error a caller of Keyport can meet, as one small hierarchy.

    KeyportError
    ├── MalformedRequest               400, refused before any other check
    │   ├── DuplicateHeader            Authorization or x-meetergo-api-user-id sent twice
    │   └── NonCanonicalPath           `//`, dot segments, encoded `/`, control characters
    ├── AuthenticationError            401, checked in the order of docs/contract.md §2
    │   ├── MissingAuthorization       no or empty Authorization header
    │   ├── InvalidApiKey              malformed, bad checksum, unknown, wrong secret, revoked
    │   ├── ExpiredApiKey              expires_at <= now
    │   ├── DeactivatedApiKey          status inactive
    │   ├── ExpiredPersonalToken       a personal access token past its expiry
    │   └── PersonalTokensDisabled     the token's company turned personal access tokens off
    ├── ActingUserError                the x-meetergo-api-user-id rules
    │   ├── MissingActingUserHeader    400, endpoint needs a user and the header is absent
    │   ├── InvalidActingUserHeader    400, header is not a UUID
    │   └── UnknownActingUser          403, no active user of the key's company
    ├── ValidationFailed               400, with per-field errors
    ├── PermissionDenied               403, acting user may not do this
    │   ├── IpNotAllowed               403, the key's allowlist excludes the client's address
    │   ├── InsufficientScope          403, the key lacks a scope the request needs
    │   └── PersonalTokenRefused       403, what a personal access token may never do
    ├── NotFound                       404, unknown or another company's — never told apart
    ├── Conflict                       409, duplicate email or slug
    │   └── InvalidKeyTransition       409, e.g. re-activating a revoked key
    ├── Gone                           410, a used or expired invitation link
    ├── PayloadTooLarge                413, a request body over the limit
    ├── RateLimited                    429, the key's budget, or the client's failures, spent
    ├── HeadersTooLarge                431, request headers over the limit
    └── ServiceUnavailable             503, a dependency is down

Only `keyport.web.errors` turns these into HTTP answers; the CLI prints their message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")
V = TypeVar("V")


class KeyportError(Exception):
    """Base of every domain error; `message` is safe to show to the caller."""

    message = "Internal error"

    def __init__(self, message: str | None = None) -> None:
        if message is not None:
            self.message = message
        super().__init__(self.message)


class MalformedRequest(KeyportError):
    """The request is refused as it stands, before its credential is looked at (HTTP 400)."""

    message = "Bad Request"


class DuplicateHeader(MalformedRequest):
    """Two copies of a header that decides who is calling: a proxy that reads the other copy
    would disagree with us about who that is."""

    def __init__(self, name: str) -> None:
        super().__init__(f"Duplicate header: {name}")
        self.name = name


class NonCanonicalPath(MalformedRequest):
    message = "Invalid request path"


class ReservedHeader(MalformedRequest):
    """A request to a gateway's question that carries a header named like Keyport's answers
    (`X-Keyport-…`, `_` read as `-`): the proxy cannot strip every such name (stock nginx has
    no prefix delete), and the upstream must never receive one a client chose."""

    message = "Headers named X-Keyport-* are Keyport's own: the client may not send them"


class AuthenticationError(KeyportError):
    """The credential itself was refused (HTTP 401)."""


class MissingAuthorization(AuthenticationError):
    message = "Missing authorization header"


class InvalidApiKey(AuthenticationError):
    message = "Invalid API key"


class ExpiredApiKey(AuthenticationError):
    message = "API key has expired"


class DeactivatedApiKey(AuthenticationError):
    message = "API key is deactivated"


class ExpiredPersonalToken(AuthenticationError):
    message = "Personal access token has expired"


class PersonalTokensDisabled(AuthenticationError):
    message = "Personal access tokens are disabled for this company"


class ActingUserError(KeyportError):
    """The key is fine but the user it should act as is not."""


class MissingActingUserHeader(ActingUserError):
    message = "Missing required header 'x-meetergo-api-user-id' for API key authentication"


class InvalidActingUserHeader(ActingUserError):
    message = "Invalid user: x-meetergo-api-user-id must be a UUID"


class UnknownActingUser(ActingUserError):
    message = "Invalid user: no such user in this company"


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    message: str


class ValidationFailed(KeyportError):
    message = "Validation failed"

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__()
        self.errors = errors

    @classmethod
    def single(cls, field: str, message: str) -> ValidationFailed:
        return cls([FieldError(field, message)])

    def __str__(self) -> str:
        return "; ".join(f"{e.field}: {e.message}" for e in self.errors)


class FieldProblems:
    """Every field's problem collected, so that a request is refused once for all of them
    instead of one field at a time."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def check(self, validate: Callable[[V], T], value: V, fallback: T) -> T:
        """`validate(value)`, or `fallback` after noting its problems (raised by `done`)."""
        try:
            return validate(value)
        except ValidationFailed as invalid:
            self.errors.extend(invalid.errors)
            return fallback

    def done(self) -> None:
        if self.errors:
            raise ValidationFailed(self.errors)


class PermissionDenied(KeyportError):
    message = "Forbidden"


class IpNotAllowed(PermissionDenied):
    message = "API key is not allowed from this IP address"


class InsufficientScope(PermissionDenied):
    def __init__(self, scope: str, hint: FieldError | None = None) -> None:
        super().__init__(f"Insufficient scope: requires {scope}")
        self.scope = scope
        self.hint = hint  # what to do instead, for the answer's `errors`


class PersonalTokenRefused(PermissionDenied):
    """A request a personal access token may never make, whatever its scopes (its message
    says which rule)."""


class NotFound(KeyportError):
    message = "Not found"


class Conflict(KeyportError):
    message = "Conflict"


class InvalidKeyTransition(Conflict):
    """A lifecycle change the key's status does not allow."""


class Gone(KeyportError):
    """Something that existed and is over for good: a used or expired invitation."""

    message = "Gone"


class PayloadTooLarge(KeyportError):
    message = "Payload Too Large"


class RateLimited(KeyportError):
    """Too many requests; `retry_after` says in how many whole seconds one more may pass."""

    message = "Too Many Requests"

    def __init__(self, retry_after: int = 1) -> None:
        super().__init__()
        self.retry_after = retry_after


class HeadersTooLarge(KeyportError):
    message = "Request Header Fields Too Large"


class ServiceUnavailable(KeyportError):
    message = "Service Unavailable"
