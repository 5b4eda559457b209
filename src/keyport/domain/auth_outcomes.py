"""How authenticating an API request ended: one enum whose values are the reason strings.

The same words label the `keyport_api_auth_total` metric, go into request logs and are stored
with a key's refused requests, so they are defined here once and never spelled elsewhere.
"""

from __future__ import annotations

from enum import StrEnum

from keyport.domain import errors


class AuthOutcome(StrEnum):
    SUCCESS = "success"
    MISSING = "missing"  # no Authorization header
    INVALID = "invalid"  # malformed, bad checksum, unknown, wrong secret, revoked
    EXPIRED = "expired"
    DEACTIVATED = "deactivated"
    DISABLED = "disabled"  # a personal access token whose company turned tokens off
    MISSING_USER_HEADER = "missing_user_header"
    INVALID_USER_HEADER = "invalid_user_header"
    INVALID_USER = "invalid_user"
    RATE_LIMITED = "rate_limited"  # the key is fine but over its rate limit (429)
    IP_NOT_ALLOWED = "ip_not_allowed"  # the key's IP allowlist excludes the client (403)
    INSUFFICIENT_SCOPE = "insufficient_scope"  # the key lacks a scope the request needs (403)
    TOKEN_REFUSED = "token_refused"  # what a personal access token may never do (403)


# Every way a request can be refused before its route's logic, in docs/contract.md §2 order.
AUTH_FAILURES = tuple(outcome for outcome in AuthOutcome if outcome is not AuthOutcome.SUCCESS)
# A refusal that still names a real key: the key exists but may not be used now.
KEY_STATE_REFUSALS = frozenset({AuthOutcome.EXPIRED, AuthOutcome.DEACTIVATED, AuthOutcome.DISABLED})

_OUTCOME_OF_ERROR: dict[type[errors.KeyportError], AuthOutcome] = {
    errors.MissingAuthorization: AuthOutcome.MISSING,
    errors.InvalidApiKey: AuthOutcome.INVALID,
    errors.ExpiredApiKey: AuthOutcome.EXPIRED,
    errors.DeactivatedApiKey: AuthOutcome.DEACTIVATED,
    errors.ExpiredPersonalToken: AuthOutcome.EXPIRED,
    errors.PersonalTokensDisabled: AuthOutcome.DISABLED,
    errors.PersonalTokenRefused: AuthOutcome.TOKEN_REFUSED,
    errors.MissingActingUserHeader: AuthOutcome.MISSING_USER_HEADER,
    errors.InvalidActingUserHeader: AuthOutcome.INVALID_USER_HEADER,
    errors.UnknownActingUser: AuthOutcome.INVALID_USER,
    errors.IpNotAllowed: AuthOutcome.IP_NOT_ALLOWED,
    errors.InsufficientScope: AuthOutcome.INSUFFICIENT_SCOPE,
}


def failure_of(error: errors.KeyportError) -> AuthOutcome | None:
    """The outcome an error stands for, or None when it is not an authentication refusal."""
    return _OUTCOME_OF_ERROR.get(type(error))
