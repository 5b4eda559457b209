"""What admits a request to a route under a guarded prefix (web/paths.py), declared at the route.

Every route handler there says which of these lets a request in, in its `opt` under
`ADMITS`; `web/route_admissions.py` reads them when the application is built and refuses to
start when one says nothing. The gate asks the same table for each request before its
credential is checked, so a route added without a word is never open to every key.

- `Admission.needing(scope, ...)`: any valid credential holding these scopes;
- `ANY_CREDENTIAL`: any valid credential (the gateway's own `/v1/authorize`, self-rotation);
- `ASKED_SCOPES`: any valid credential holding the scopes its `?scope=` names, in order
  (`/v1/authorize`: the reverse proxy says what the original request needs);
- `SIGNATURE`: no credential; the route checks a signature of its own.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from keyport.domain import scopes
from keyport.domain.errors import ValidationFailed
from keyport.web.query import unknown_parameter

ADMITS = "admits"  # the route handler's `opt` key


@dataclass(frozen=True, slots=True)
class Admission:
    scopes: tuple[str, ...] = ()  # every one of them is required
    asked_in_query: bool = False  # and those the request's `?scope=` names
    signature: bool = False  # no credential: the route verifies a signature itself
    # The acting user the gate resolves before the route: None (the route needs none, or
    # resolves it itself), False (the user header's, else the company owner), True (the
    # header's, which must be sent).
    acting_user: bool | None = None

    @classmethod
    def needing(cls, *scopes: str, acting_user: bool | None = None) -> Admission:
        return cls(scopes=scopes, acting_user=acting_user)

    def needed(self, scope: Any) -> tuple[str, ...]:
        """The scopes this request needs; ValidationFailed for a malformed `?scope=`."""
        if self.asked_in_query:
            query: bytes = scope["query_string"]
            if query:
                return requested_scopes(query)
        return self.scopes

    @property
    def opt(self) -> dict[str, Admission]:
        """The route handler's `opt` that declares it."""
        return {ADMITS: self}


_MALFORMED = "must be a scope of the form name:action"


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


ANY_CREDENTIAL = Admission()
ASKED_SCOPES = Admission(asked_in_query=True)
SIGNATURE = Admission(signature=True)
