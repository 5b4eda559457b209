"""What a verified API key stands for, as the request path needs it."""

from __future__ import annotations

from dataclasses import dataclass

from keyport.domain.keys import KeyStatus


@dataclass(frozen=True, slots=True)
class Principal:
    """A key record reduced to what authentication decides on. Holds no secret."""

    key_id: str
    company_id: str
    owner_id: str
    status: KeyStatus
    expires_at: float  # POSIX seconds; compared with Clock.time() on every request
    rate_limit: int | None = None  # the key's own requests a minute; None: the default
