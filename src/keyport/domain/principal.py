"""What a verified API key stands for, as the request path needs it."""

from __future__ import annotations

import functools
from typing import NamedTuple

from keyport.domain import ip_allowlists
from keyport.domain.ip_allowlists import IpNetwork
from keyport.domain.keys import KeyStatus
from keyport.domain.scopes import DEFAULT_SCOPES, first_missing


# A NamedTuple, not a frozen dataclass: as immutable, and built for every key read from the
# database (with many keys, a thousand a second) at a third of the cost.
class Principal(NamedTuple):
    """A key record reduced to what authentication decides on. Holds no secret."""

    key_id: str
    company_id: str
    owner_id: str
    status: KeyStatus
    expires_at: float  # POSIX seconds; compared with Clock.time() on every request
    rate_limit: int | None = None  # the key's own requests a minute; None: the default
    scopes: tuple[str, ...] = DEFAULT_SCOPES  # as stored, in order
    allowed_networks: tuple[IpNetwork, ...] = ()  # empty: anywhere

    def allows_ip(self, client_ip: str | None) -> bool:
        return ip_allowlists.allows(self.allowed_networks, client_ip)

    def missing_scope(self, required: tuple[str, ...]) -> str | None:
        """The first of `required` this key does not hold, in the order given."""
        return _first_missing(self.scopes, required)


# Asked on every request with many keys cycling; keys hold few distinct sets of scopes.
_first_missing = functools.lru_cache(maxsize=4096)(first_missing)
