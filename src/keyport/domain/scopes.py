"""What a key may do: its scopes (docs/contract.md §6).

A key holds a list of scopes. `*` (full access, the default) grants every scope except
`keys:manage`, so a key made without scopes behaves exactly as a meetergo key. Keyport's own
scopes are `users:read`, `users:write` and `keys:manage`; operators guarding their own services
use any other `name:action`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

FULL_ACCESS = "*"
USERS_READ = "users:read"
USERS_WRITE = "users:write"
KEYS_MANAGE = "keys:manage"
DEFAULT_SCOPES: tuple[str, ...] = (FULL_ACCESS,)
MAX_SCOPES = 50
MAX_SCOPE_LENGTH = 100

# `*` stands for everything but handing out keys: managing keys must be asked for by name.
_NOT_IN_FULL_ACCESS = frozenset({KEYS_MANAGE})
_SCOPE = re.compile(r"[a-z0-9_.-]+:[a-z0-9_.-]+\Z")
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def is_scope(value: str) -> bool:
    """A scope as a key may hold it or a request may require it: `*` or `name:action`."""
    return value == FULL_ACCESS or (
        len(value) <= MAX_SCOPE_LENGTH and _SCOPE.match(value) is not None
    )


def is_required_scope(value: str) -> bool:
    """What `?scope=` may ask for: a `name:action`, never `*`."""
    return value != FULL_ACCESS and is_scope(value)


def grants(held: Iterable[str], required: str) -> bool:
    for scope in held:
        if scope == required or (scope == FULL_ACCESS and required not in _NOT_IN_FULL_ACCESS):
            return True
    return False


def first_missing(held: Iterable[str], required: Iterable[str]) -> str | None:
    """The first required scope, in the order given, that `held` does not grant."""
    held = tuple(held)
    for scope in required:
        if not grants(held, scope):
            return scope
    return None


def v4_scope(method: str) -> str:
    """The scope a `/v4/user…` request needs: reading or writing users."""
    return USERS_READ if method in _READ_METHODS else USERS_WRITE


def describe(scopes: Iterable[str]) -> str:
    """For people: "Full access" for `*`, else the scopes space-separated."""
    listed = tuple(scopes)
    if listed == DEFAULT_SCOPES:
        return "Full access"
    return " ".join(listed)
