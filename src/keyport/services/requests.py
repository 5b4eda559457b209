"""What the request path reports about each finished request, for usage, metrics and logs.

The web gate builds one RequestRecord per HTTP request and hands it to every observer. An
observer must be cheap and must not do I/O on the caller's time: count in memory, flush later.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class RequestRecord:
    request_id: str
    method: str
    path: str  # the raw path: for logs only, never a metric label (unbounded)
    route: str | None  # the route template, e.g. /v4/user/{user_id}; None when unrouted
    status: int
    latency: float  # seconds, from the gate receiving the request to the last byte sent
    client_ip: str | None
    user_agent: str | None
    key_id: str | None  # set once the key was verified
    acting_user_id: str | None  # set once the acting user was resolved
    auth_failure: str | None  # why authentication refused the request (see AUTH_FAILURES)
    started_at: float  # POSIX seconds
    verification_latency: float | None = None  # seconds spent verifying the key, if any


# Reasons an API request can be refused before it reaches its route's logic.
AUTH_FAILURES = (
    "missing",  # no Authorization header
    "invalid",  # malformed, bad checksum, unknown, wrong secret, revoked
    "expired",
    "deactivated",
    "missing_user_header",
    "invalid_user_header",
    "invalid_user",
    "rate_limited",  # the key is fine but over its rate limit (429)
    "ip_not_allowed",  # the key's IP allowlist excludes the client (403)
    "insufficient_scope",  # the key lacks a scope the request needs (403)
)


class RequestObserver(Protocol):
    def observe(self, record: RequestRecord) -> None: ...
