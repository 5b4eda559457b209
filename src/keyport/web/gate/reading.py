"""What the gate reads from a request alone, before any check: its headers (in one pass), the
client's address and scheme (as a trusted proxy says), whether its path is guarded, what its
route declares admits it, and the fast route that answers it. The same again for an identical
request, which is why the express lane may keep it for a connection (web/gate/express.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

from keyport.config import Network
from keyport.services.access.authentication import PresentedKey, presented_key
from keyport.web import errors
from keyport.web.client_ip import TrustedProxies, forwarded_scheme, resolve_client_ip
from keyport.web.gate.admission import Admission
from keyport.web.gate.check import FastRoute, Passage, Scope
from keyport.web.gate.request_ids import new_request_id
from keyport.web.paths import AUTHORIZE_PATH, guarded_prefix, is_authorize
from keyport.web.request_context import RequestContext
from keyport.web.request_headers import RequestHeaders, scan

AdmissionOf = Callable[[Scope], Admission]
# Over https (also as a trusted proxy says), browsers should never try plain http again.
HSTS = (b"strict-transport-security", b"max-age=31536000")


class Prepared(NamedTuple):
    """A request as read before any check (see the module's docstring)."""

    route: FastRoute | None
    headers: RequestHeaders
    client_ip: str | None
    via_proxy: bool
    scheme: str
    admission: Admission | None  # None: not under a guarded prefix
    key: PresentedKey | None  # its Authorization header read as a key (the express lane's)
    authorizing: bool  # `/v1/authorize`: refusals name themselves in headers too

    def passage(self, scope: Scope) -> Passage:
        """A new passage through the checks for this request."""
        context = RequestContext(new_request_id(), self.client_ip, self.headers, self.via_proxy)
        if self.authorizing:
            context.route = AUTHORIZE_PATH  # refused or not, for the metrics
        added: errors.Headers = [(b"x-request-id", context.request_id.encode())]
        if self.scheme == "https":
            added.append(HSTS)
        passage = Passage(scope, context, added, route=self.route, admission=self.admission)
        passage.key = self.key
        return passage


class RequestReader:
    def __init__(
        self,
        admission_of: AdmissionOf,
        *,
        trusted_proxies: tuple[Network, ...] = (),
        fast_routes: Sequence[FastRoute] = (),
    ) -> None:
        self._admission_of = admission_of
        self._proxies = TrustedProxies(trusted_proxies)
        self._fast_routes = tuple(fast_routes)

    def read(self, scope: Scope, *, with_key: bool = False) -> Prepared:
        headers = scan(scope["headers"])
        path: str = scope["path"]
        route = admission = None
        if guarded_prefix(path) is not None:
            route = self.fast_route(scope)
            admission = self._admission_of(scope) if route is None else route.admission(scope)
        client_ip, via_proxy, scheme = self._client(scope, headers)
        return Prepared(
            route,
            headers,
            client_ip,
            via_proxy,
            scheme,
            admission,
            presented_key(headers.authorization) if with_key else None,
            is_authorize(path),
        )

    def fast_route(self, scope: Scope) -> FastRoute | None:
        for route in self._fast_routes:
            if route.handles(scope):
                return route
        return None

    def _client(self, scope: Scope, headers: RequestHeaders) -> tuple[str | None, bool, str]:
        """The client's address, whether the peer is a trusted proxy, and the scheme (as a
        trusted proxy says, else the connection's own)."""
        proxies = self._proxies
        client = scope.get("client")
        peer = client[0] if client else None
        via_proxy = proxies.trusts(peer)
        client_ip = resolve_client_ip(peer, proxies, headers.forwarded_for, peer_trusted=via_proxy)
        own_scheme: str = scope.get("scheme", "http")
        if via_proxy:
            return client_ip, via_proxy, forwarded_scheme(own_scheme, headers.forwarded_proto)
        return client_ip, via_proxy, own_scheme
