"""The request headers the gate and the routes behind it read, found in one pass.

Every request's headers are walked once (their total size is needed anyway, for the 431):
authentication, the acting user, the trusted proxy's forwarded headers, the duplicate-header
check and the request record then read fields instead of scanning the list again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

AUTHORIZATION = b"authorization"
USER_HEADER = b"x-meetergo-api-user-id"
# Headers that say who is calling: a second copy is refused, never silently ignored.
IDENTITY_HEADERS = (AUTHORIZATION, USER_HEADER)
_IDENTITY_LENGTHS = frozenset(len(name) for name in IDENTITY_HEADERS)

_AUTHORIZATION, _USER, _USER_AGENT, _FOR, _PROTO, _METHOD, _URI, _ORIGINAL_URI, _PREFER = range(9)
_WANTED = {
    AUTHORIZATION: _AUTHORIZATION,
    USER_HEADER: _USER,
    b"user-agent": _USER_AGENT,
    b"x-forwarded-for": _FOR,
    b"x-forwarded-proto": _PROTO,
    # Where a trusted proxy names the request it asks /v1/authorize about.
    b"x-forwarded-method": _METHOD,
    b"x-forwarded-uri": _URI,
    b"x-original-uri": _ORIGINAL_URI,
    b"prefer": _PREFER,  # RFC 7240: `return=minimal` asks /v1/authorize for no body
}
MINIMAL = "return=minimal"


def prefers_minimal(value: bytes) -> bool:
    """Whether a `Prefer` header value holds the preference `return=minimal` (RFC 7240:
    preferences separated by commas, each with optional `;` parameters)."""
    text = value.decode("latin-1").lower()
    return any(part.split(";", 1)[0].strip() == MINIMAL for part in text.split(","))


@dataclass(slots=True)
class RequestHeaders:
    """First values unless said otherwise; None when the header is absent."""

    size: int = 0  # bytes of all names and values together
    authorization: str | None = None
    user_id: str | None = None  # x-meetergo-api-user-id
    user_agent: str | None = None
    duplicated: str | None = None  # the first identity header sent twice
    forwarded_for: list[bytes] = field(default_factory=list)  # every value, in order
    forwarded_proto: bytes | None = None  # the last value
    forwarded_method: str | None = None
    forwarded_uri: str | None = None  # x-forwarded-uri
    original_uri: str | None = None
    minimal: bool = False  # a `Prefer` header asked for `return=minimal`
    # A header named like Keyport's answers: `X-Keyport-…`, with `_` read as `-` (WSGI does).
    keyport_named: bool = False


_X = (b"x", b"X")


def scan(headers: Iterable[tuple[bytes, bytes]]) -> RequestHeaders:
    found = RequestHeaders()
    size = 0
    for key, value in headers:
        size += len(key) + len(value)
        which = _WANTED.get(key)
        if which is None:
            if key[:1] in _X and key[1:10].lower().replace(b"_", b"-") == b"-keyport-":
                found.keyport_named = True
                continue
            # ASGI servers send lower-case names; should one not, identity headers still count.
            if len(key) not in _IDENTITY_LENGTHS or key.lower() not in IDENTITY_HEADERS:
                continue
            which = _WANTED[key.lower()]
        if which <= _USER:
            text = value.decode("latin-1")
            if which == _AUTHORIZATION:
                if found.authorization is None:
                    found.authorization = text
                    continue
                repeated = AUTHORIZATION
            else:
                if found.user_id is None:
                    found.user_id = text
                    continue
                repeated = USER_HEADER
            if found.duplicated is None:
                found.duplicated = repeated.decode()
        elif which == _USER_AGENT:
            if found.user_agent is None:
                found.user_agent = value.decode("latin-1")
        elif which == _FOR:
            found.forwarded_for.append(value)
        elif which == _PROTO:
            found.forwarded_proto = value
        elif which == _METHOD:
            if found.forwarded_method is None:
                found.forwarded_method = value.decode("latin-1")
        elif which == _URI:
            if found.forwarded_uri is None:
                found.forwarded_uri = value.decode("latin-1")
        elif which == _ORIGINAL_URI:
            if found.original_uri is None:
                found.original_uri = value.decode("latin-1")
        elif prefers_minimal(value):
            found.minimal = True
    found.size = size
    return found
