"""What Keyport's answer to one question means for the request that was asked about.

200: the request may go on, as `Identity`, and the `RateLimit-*` and credits headers are to be
copied onto the app's answer. A 4xx: Keyport's refusal, handed to the client exactly (status,
body, and the headers that belong to it), and the app is not called. Anything else — no
answer, a timeout, a 5xx, a 200 that is not an identity — is 503: never the app.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from keyport_client._models import Identity

Headers = list[tuple[str, str]]

CREDITS_HEADER = "x-keyport-credits-remaining"
# A refusal's own headers, which the client receives with it. Anything else Keyport answers
# (its request id, the refusal-in-headers meant for nginx) stays between it and the app.
_REFUSAL_HEADERS = frozenset({"content-type", "www-authenticate", "retry-after", CREDITS_HEADER})


def _is_rate_limit(name: str) -> bool:
    return name == "ratelimit" or name.startswith("ratelimit-")


@dataclass(frozen=True, slots=True)
class Needs:
    """What one request is asked about: every scope (in the order given) and a cost (None:
    Keyport's default). The path's scope comes first, then the route's own."""

    scopes: tuple[str, ...] = ()
    cost: int | None = None

    def __add__(self, other: Needs) -> Needs:
        scopes = tuple(dict.fromkeys(self.scopes + other.scopes))
        if self.cost is None or other.cost is None:
            cost = other.cost if self.cost is None else self.cost
        else:
            cost = self.cost + other.cost
        return Needs(scopes, cost)

    def covers(self, other: Needs) -> bool:
        """Whether a question with these needs asked for everything `other` names."""
        return set(other.scopes) <= set(self.scopes) and (
            other.cost is None or (self.cost is not None and self.cost >= other.cost)
        )


def needs(scopes: Iterable[str], cost: int | None) -> Needs:
    """Needs from a decorator's or a dependency's arguments, checked where they are written."""
    found = tuple(scopes)
    if not found and cost is None:
        raise TypeError("name at least one scope, or a cost")
    for scope in found:
        if not isinstance(scope, str) or not scope or " " in scope:
            raise TypeError(f"{scope!r} is not a scope like orders:write")
    if cost is not None and (isinstance(cost, bool) or not isinstance(cost, int) or cost < 0):
        raise TypeError(f"cost must be a whole number of credits, not {cost!r}")
    return Needs(found, cost)


@dataclass(frozen=True, slots=True)
class Refusal:
    """An answer the client gets instead of the app's: status, JSON body, headers."""

    status: int
    body: bytes
    headers: Headers = field(default_factory=list)

    @classmethod
    def of(cls, status: int, message: str, error: str) -> Refusal:
        body = {"statusCode": status, "message": message, "error": error}
        encoded = json.dumps(body, separators=(",", ":")).encode()
        return cls(status, encoded, [("content-type", "application/json")])


@dataclass(frozen=True, slots=True)
class Allowed:
    identity: Identity
    headers: Headers  # copied onto the app's answer: RateLimit-*, X-Keyport-Credits-Remaining
    asked: Needs


UNAVAILABLE = Refusal.of(503, "Service Unavailable", "Service Unavailable")
# Keyport's own answer to a path that is not in its one canonical form.
INVALID_PATH = Refusal.of(400, "Invalid request path", "Bad Request")


def decide(
    status: int, headers: Iterable[tuple[str, str]], body: bytes, asked: Needs
) -> Allowed | Refusal:
    """Keyport's answer (status, lower-case header names, body) to a question about `asked`."""
    if status == 200:
        try:
            identity = Identity.from_json(json.loads(body))
        except (ValueError, TypeError, KeyError, AttributeError):
            return UNAVAILABLE
        copied = [(n, v) for n, v in headers if _is_rate_limit(n) or n == CREDITS_HEADER]
        return Allowed(identity, copied, asked)
    if 400 <= status < 500:
        kept = [(n, v) for n, v in headers if n in _REFUSAL_HEADERS or _is_rate_limit(n)]
        return Refusal(status, body, kept)
    return UNAVAILABLE
