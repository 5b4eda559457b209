"""What the gate learns about one HTTP request, for fast routes, handlers and observers.

The gate creates one RequestContext per request and leaves it in the ASGI scope under
SCOPE_KEY; everything downstream reads and completes it through `context_of`. It is the only
thing Keyport keeps in the scope, so this class is the whole contract between the gate, the
routes it hands requests to, and the RequestRecord it reports when the answer is sent.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from keyport.domain.auth_outcomes import AuthOutcome
from keyport.domain.principal import Principal
from keyport.web.request_headers import RequestHeaders

SCOPE_KEY = "keyport"


@dataclass(slots=True)
class RequestContext:
    request_id: str
    client_ip: str | None  # the peer, or X-Forwarded-For from trusted proxies
    headers: RequestHeaders  # the ones Keyport reads, found in one pass
    via_trusted_proxy: bool = False  # the socket's peer is one of KEYPORT_TRUSTED_PROXIES
    principal: Principal | None = None  # set once the key was verified
    acting_user_id: str | None = None  # set once the acting user was resolved
    auth_failure: AuthOutcome | None = None  # why authentication refused the request
    refused_key_id: str | None = None  # a real key refused for its state (expired, ...)
    verification_seconds: float | None = None  # time spent verifying the key, if any
    route: str | None = None  # template of the route that answered, e.g. /v4/user/{user_id}

    @property
    def key_id(self) -> str | None:
        """The key the request was made with, when it named a real one."""
        return self.principal.key_id if self.principal is not None else self.refused_key_id


def attach(scope: MutableMapping[str, Any], context: RequestContext) -> RequestContext:
    scope[SCOPE_KEY] = context
    return context


def context_of(scope: Mapping[str, Any]) -> RequestContext:
    """The request's context; only requests that passed through the gate have one."""
    context: RequestContext = scope[SCOPE_KEY]
    return context


def find_context(scope: Mapping[str, Any]) -> RequestContext | None:
    found: RequestContext | None = scope.get(SCOPE_KEY)
    return found
