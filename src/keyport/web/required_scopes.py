"""Which scopes a guarded request needs (docs/contract.md §6).

`/v4/user…` needs `users:read` to read (GET, HEAD, OPTIONS) and `users:write` otherwise;
other `/v4` paths need none (they are 404 anyway). The management API `/v1/keys…` needs
`keys:manage` (§8), except `/v1/keys/self/rotate`, which any key may call for itself; so does
`/v1/tokens…`, the company's personal access tokens.
`/v1/authorize` needs every scope named in its `?scope=` parameters, in the order given, so
that the first missing one is named.
"""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import parse_qsl

from keyport.domain import scopes
from keyport.domain.errors import ValidationFailed
from keyport.web.query import unknown_parameter

AUTHORIZE_PATH = "/v1/authorize"
_AUTHORIZE_SUFFIXED = AUTHORIZE_PATH + "/"


def is_authorize(path: str) -> bool:
    """`/v1/authorize`, or `/v1/authorize/<original path>` as Envoy's HTTP ext_authz asks it
    (it appends the request's own path and query to a prefix)."""
    return path == AUTHORIZE_PATH or path.startswith(_AUTHORIZE_SUFFIXED)


_USERS = "/v4/user"
_READ = (scopes.USERS_READ,)
_WRITE = (scopes.USERS_WRITE,)
_MALFORMED = "must be a scope of the form name:action"
_KEYS = "/v1/keys"
_SELF_ROTATE = "/v1/keys/self/rotate"
_TOKENS = "/v1/tokens"
_MANAGE = (scopes.KEYS_MANAGE,)


def _under(path: str, prefix: str) -> bool:
    return path.startswith(prefix) and (len(path) == len(prefix) or path[len(prefix)] == "/")


def required_scopes(scope: Any) -> tuple[str, ...]:
    """For the ASGI scope of a guarded request; ValidationFailed for a bad `?scope=`."""
    path: str = scope["path"]
    if path == AUTHORIZE_PATH:
        query: bytes = scope["query_string"]
        return requested_scopes(query) if query else ()
    if path.startswith(_AUTHORIZE_SUFFIXED):
        return ()  # the query there is the client's own: it never decides what is required
    if _under(path, _USERS):
        return _READ if scopes.v4_scope(scope["method"]) == scopes.USERS_READ else _WRITE
    if (_under(path, _KEYS) and path != _SELF_ROTATE) or _under(path, _TOKENS):
        return _MANAGE
    return ()


@functools.lru_cache(maxsize=1024)  # proxies send the same few query strings over and over
def requested_scopes(query: bytes) -> tuple[str, ...]:
    wanted: dict[str, None] = {}
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if name != "scope":  # the proxy configurations send only `scope`: anything else is a typo
            raise unknown_parameter(name)  # (or `?=x`, a value without a name)
        if not scopes.is_required_scope(value):
            raise ValidationFailed.single("scope", _MALFORMED)
        wanted[value] = None
    return tuple(wanted)
