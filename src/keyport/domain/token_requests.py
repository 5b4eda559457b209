"""What a personal access token may never ask, whatever its scopes: the token kind's own
refusals, checked right after the credential and before the allowlist, scopes and rate limit.

A token always acts as its own user, so naming anyone else in the user header is refused; and
creating or managing users, managing credentials and spending credits are left to company keys
(meetergo's rule, in its words).
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from keyport.domain.errors import PersonalTokenRefused
from keyport.domain.users import parse_uuid

OTHER_USER = "Personal access tokens act as their owner: omit x-meetergo-api-user-id"
CREATE_USERS = "Personal Access Tokens cannot create users — authenticate with a Platform API Key"
MANAGE_USERS = "Personal Access Tokens cannot manage users — authenticate with a Platform API Key"
MANAGE_CREDENTIALS = "Personal Access Tokens cannot manage credentials"
SPEND_CREDITS = "Personal access tokens cannot spend credits"

_USERS = "/v4/user"
_USER_PREFIX = _USERS + "/"
_CREDENTIAL_PREFIXES = ("/v1/keys", "/v1/tokens", "/v1/leaks")
_AUTHORIZE = "/v1/authorize"


def _under(path: str, prefix: str) -> bool:
    return path.startswith(prefix) and (len(path) == len(prefix) or path[len(prefix)] == "/")


def names_other_user(header: str | None, user_id: str) -> bool:
    """The user header is present and names anyone but `user_id` (any value, UUID or not)."""
    if header is None or not header.strip():
        return False
    return parse_uuid(header.strip()) != user_id


def _spends_credits(query: bytes) -> bool:
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        cost = value.strip()
        if name == "cost" and cost.isascii() and cost.isdigit() and int(cost) > 0:
            return True
    return False


def refusal(
    method: str, path: str, query: bytes, user_header: str | None, user_id: str
) -> PersonalTokenRefused | None:
    """The refusal a token of user `user_id` gets for this request, or None."""
    if names_other_user(user_header, user_id):
        return PersonalTokenRefused(OTHER_USER)
    if path == _USERS and method == "POST":
        return PersonalTokenRefused(CREATE_USERS)
    if path.startswith(_USER_PREFIX) and method in ("PATCH", "DELETE"):
        return PersonalTokenRefused(MANAGE_USERS)
    if any(_under(path, prefix) for prefix in _CREDENTIAL_PREFIXES):
        return PersonalTokenRefused(MANAGE_CREDENTIALS)
    if path == _AUTHORIZE and query and _spends_credits(query):
        return PersonalTokenRefused(SPEND_CREDITS)
    return None
