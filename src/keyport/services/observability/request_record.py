"""What the request path reports about each finished request, for usage, metrics and logs.

The web gate builds one RequestRecord per HTTP request and hands it to every observer. An
observer must be cheap and must not do I/O on the caller's time: count in memory, flush later.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

from keyport.domain.auth_outcomes import AuthOutcome


# A NamedTuple: immutable like a frozen dataclass, and built for every request at a third of
# its cost (a frozen dataclass sets each of its 13 fields through object.__setattr__).
class RequestRecord(NamedTuple):
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
    auth_failure: AuthOutcome | None  # why authentication refused the request, if it did
    started_at: float  # POSIX seconds
    verification_latency: float | None = None  # seconds spent verifying the key, if any


class RequestObserver(Protocol):
    def observe(self, record: RequestRecord) -> None: ...
