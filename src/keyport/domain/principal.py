"""What a verified credential (a company key or a personal access token) stands for, as the
request path needs it."""

from __future__ import annotations

import functools
from enum import StrEnum
from typing import NamedTuple

from keyport.domain import ip_allowlists
from keyport.domain.ip_allowlists import IpNetwork
from keyport.domain.keys import KeyStatus
from keyport.domain.scopes import DEFAULT_SCOPES, first_missing


class Credential(StrEnum):
    """The two kinds of credential; the value is what `/v1/authorize` names."""

    API_KEY = "api_key"
    PERSONAL_ACCESS_TOKEN = "personal_access_token"


# A NamedTuple, not a frozen dataclass: as immutable, and built for every key read from the
# database (with many keys, a thousand a second) at a third of the cost.
class Principal(NamedTuple):
    """A key or token record reduced to what authentication decides on. Holds no secret.

    For a personal access token: `key_id` is the token's id, `owner_id` its user (whom it
    always acts as), `status` inactive while its company turns tokens off, `expires_at`
    infinite for a token without expiry, and `allowed_networks` the company's token networks.
    """

    key_id: str
    company_id: str
    owner_id: str  # the company's owner for a key; the token's user for a token
    status: KeyStatus
    expires_at: float  # POSIX seconds; compared with Clock.time() on every request
    rate_limit: int | None = None  # the key's own requests a minute; None: the default
    scopes: tuple[str, ...] = DEFAULT_SCOPES  # as stored, in order
    allowed_networks: tuple[IpNetwork, ...] = ()  # empty: anywhere
    credential: Credential = Credential.API_KEY

    @property
    def is_token(self) -> bool:
        return self.credential is Credential.PERSONAL_ACCESS_TOKEN

    def allows_ip(self, client_ip: str | None) -> bool:
        return ip_allowlists.allows(self.allowed_networks, client_ip)

    def missing_scope(self, required: tuple[str, ...]) -> str | None:
        """The first of `required` this key does not hold, in the order given."""
        return _first_missing(self.scopes, required)


# Asked on every request with many keys cycling; keys hold few distinct sets of scopes.
_first_missing = functools.lru_cache(maxsize=4096)(first_missing)
