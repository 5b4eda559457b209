"""Plain ASGI middleware in front of the framework: request ids, the client's address,
oversized headers, API key authentication, rate limits, and one RequestRecord per request for
the observers (usage, metrics, logs).

It runs before routing, so every API request (`web.paths.GUARDED_PREFIXES`), even to an
unknown path, is authenticated first, and a refused key costs no framework work at all. A path
not in its canonical form is refused (400) before anything else, for every prefix, so that the
gate and the router always decide on the same path (web/paths.py). Order for API paths: a
duplicated identity header (400, not a failed authentication), an IP refused for failed
authentications (429), the key (401, counted against the IP), the key's IP allowlist (403), the
scopes the request needs (403), the key's budget (429) — docs/contract.md §2.
`/v1/authorize` refusals also carry their status and body in headers of their own
(REFUSAL_STATUS, REFUSAL_BODY) for proxies that keep only the status (nginx `auth_request`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any, NamedTuple, Protocol

from keyport.config import Network
from keyport.domain import errors as domain
from keyport.domain import token_requests
from keyport.domain.auth_outcomes import KEY_STATE_REFUSALS, AuthOutcome, failure_of
from keyport.domain.clock import Clock, SystemClock
from keyport.domain.named_tuples import new_named_tuple
from keyport.domain.principal import Principal
from keyport.services.access.authentication import (
    Authenticator,
    PresentedKey,
    presented_key,
    presented_key_in,
)
from keyport.services.observability.request_record import RequestObserver, RequestRecord
from keyport.web import errors
from keyport.web.client_ip import TrustedProxies, forwarded_scheme, resolve_client_ip
from keyport.web.paths import guarded_prefix, is_canonical
from keyport.web.request_context import RequestContext, attach, context_of
from keyport.web.request_headers import AUTHORIZATION, RequestHeaders, scan
from keyport.web.required_scopes import AUTHORIZE_PATH, is_authorize, required_scopes
from keyport.web.throttling import Throttle

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[..., Awaitable[None]]
logger = logging.getLogger(__name__)


class ExpressAnswer(NamedTuple):
    """A fast route's answer given from memory alone (see `ApiGate.answer_now`)."""

    acting_user_id: str
    headers: errors.Headers  # its own; the gate adds its headers after them
    body: bytes


class FastRoute(Protocol):
    """A hot route answered in plain ASGI, after authentication, without the framework.

    Each has a documented framework twin of the same method and path (web/openapi.py says how),
    which puts it in the OpenAPI document.
    """

    template: str  # the route it answers, for the record (RequestRecord.route)

    def handles(self, scope: Scope) -> bool: ...
    async def __call__(self, scope: Scope, send: Send) -> None: ...

    def answer_now(self, principal: Principal, headers: RequestHeaders) -> ExpressAnswer | None:
        """The answer `__call__` would send with status 200 when it needs no I/O for it (the
        acting user cached), else None, having changed nothing."""
        ...


# Request headers beyond this (names and values together) are refused with 431. uvicorn's
# parser has no limit of its own: web/http_protocol.py stops reading them past 1 MiB.
MAX_HEADER_BYTES = 16 * 1024
_HEADERS_TOO_LARGE = errors.render(domain.HeadersTooLarge())
_NON_CANONICAL_PATH = errors.render(domain.NonCanonicalPath())
REFUSAL_STATUS = b"x-keyport-refusal-status"
REFUSAL_BODY = b"x-keyport-refusal-body"
# Over https (also as a trusted proxy says), browsers should never try plain http again.
HSTS = (b"strict-transport-security", b"max-age=31536000")


def refuse_malformed(headers: RequestHeaders) -> tuple[int, bytes, errors.Headers] | None:
    """The pre-checks every API request passes before any other check (docs/contract.md §2)."""
    if headers.duplicated is not None:
        return errors.render(domain.DuplicateHeader(headers.duplicated))
    return None


def with_refusal_headers(start: Message, body: bytes) -> Message:
    """A refusal's start message, also naming its status and body in headers of their own."""
    headers = [*start.get("headers", ())]
    headers.append((REFUSAL_STATUS, str(start["status"]).encode()))
    headers.append((REFUSAL_BODY, body))
    return {**start, "headers": headers}


_ID_DIGITS = 24  # 96 random bits, in hex
_IDS_A_DRAW = 512
_id_pool = ""
_id_at = 0


def new_request_id() -> str:
    # An id, not a secret: 96 random bits. The OS is asked for many at once (a system call per
    # request was once the gate's most expensive line; a big random int formatted per request
    # the next), and a request takes a slice of them.
    global _id_pool, _id_at
    at = _id_at
    if at >= len(_id_pool):
        _id_pool, at = os.urandom(_ID_DIGITS // 2 * _IDS_A_DRAW).hex(), 0
    _id_at = at + _ID_DIGITS
    return _id_pool[at : at + _ID_DIGITS]


def _forget_ids() -> None:
    """A forked child draws its own: two processes must never hand out the same ids."""
    global _id_pool, _id_at
    _id_pool, _id_at = "", 0


os.register_at_fork(after_in_child=_forget_ids)


class Prepared(NamedTuple):
    """What the express lane finds from a request alone (its path, query and headers, and the
    connection's address and scheme), before the key's state, the budget or anything else that
    changes between two requests: the same again for an identical request."""

    route: FastRoute
    headers: RequestHeaders
    client_ip: str | None
    via_proxy: bool
    scheme: str
    key: PresentedKey
    needed: tuple[str, ...]  # the scopes the request needs

    def allows(self, principal: Principal) -> bool:
        """The key's IP allowlist and scopes let this request through (`_check_restrictions`
        without the error: the express lane only asks); for a personal access token, after
        its own refusals (a user header naming anyone else)."""
        if principal.is_token and token_requests.names_other_user(
            self.headers.user_id, principal.owner_id
        ):
            return False
        if principal.allowed_networks and not principal.allows_ip(self.client_ip):
            return False
        return not self.needed or principal.missing_scope(self.needed) is None


class ExpressMemo:
    """One connection's last express request, so that the next one that sends the same (a
    client calling again with the same headers: nearly every request on a keep-alive
    connection) skips what depends on the request alone: reading its headers, its path's
    checks, the client's address, the scopes it needs, and with the same key its digest. A
    request that differs only in its key (a client cycling through many keys, a proxy
    forwarding many clients' calls) keeps all of that but the key, which is read afresh. What
    may change between two requests — the key's cached state, its user, the budget, an IP's
    failures — is asked again every time.

    It holds the last request's headers, the key among them, for as long as the connection is
    open: the HTTP protocol keeps one per connection and drops it when the connection closes.
    """

    __slots__ = (
        "_client",
        "_headers",
        "_key_at",
        "_path",
        "_query",
        "_raw_path",
        "_scheme",
        "cleared",
        "prepared",
    )

    def __init__(self) -> None:
        self._path: str | None = None
        self._headers: list[tuple[bytes, bytes]] | None = None
        self._key_at = -1  # where the kept headers hold the key (one Authorization header)
        self._query: bytes | None = None
        self._raw_path: bytes | None = None
        self._client: Any = None
        self._scheme: str | None = None
        self.prepared: Prepared | None = None
        self.cleared: Principal | None = None  # the principal `prepared.allows` said yes to

    def recall(self, scope: Scope) -> Prepared | None:
        """What was prepared for the last request, if this one is the same or differs from
        it only in its Authorization header's value."""
        if (
            scope["path"] != self._path
            or scope["query_string"] != self._query
            or scope.get("raw_path") != self._raw_path
            or scope.get("client") != self._client
            or scope.get("scheme") != self._scheme
        ):
            return None
        headers = scope["headers"]
        if headers == self._headers:
            return self.prepared
        return self._with_other_key(headers)

    def _with_other_key(self, headers: list[tuple[bytes, bytes]]) -> Prepared | None:
        kept, at, prepared = self._headers, self._key_at, self.prepared
        if at < 0 or kept is None or prepared is None or len(headers) != len(kept):
            return None
        presented = headers[at]
        if presented[0] != kept[at][0]:
            return None
        # Compared with the kept key put in its place (one comparison in C, no copies of the
        # lists), then put back: nothing else runs in between.
        headers[at] = kept[at]
        same_otherwise = headers == kept
        headers[at] = presented
        if not same_otherwise:
            return None
        key = presented_key_in(presented[1])
        if key is None:
            return None
        route, read, client_ip, via_proxy, scheme, _, needed = prepared
        size = read.size - len(kept[at][1]) + len(presented[1])
        if size > MAX_HEADER_BYTES:
            return None
        # The kept headers are changed in place, not copied: the request they were read for
        # was answered and reported before this one was parsed (a request the express lane
        # handed on reads its headers afresh, `ApiGate.__call__`).
        read.authorization = presented[1].decode("latin-1")
        read.size = size
        found = new_named_tuple(Prepared, (route, read, client_ip, via_proxy, scheme, key, needed))
        self._headers, self.prepared, self.cleared = headers, found, None
        return found

    def keep(self, scope: Scope, prepared: Prepared) -> None:
        self._path = scope["path"]
        headers = self._headers = scope["headers"]
        self._key_at = _key_index(headers)
        self._query = scope["query_string"]
        self._raw_path = scope.get("raw_path")
        self._client = scope.get("client")
        self._scheme = scope.get("scheme")
        self.prepared = prepared
        self.cleared = None


def _key_index(headers: list[tuple[bytes, bytes]]) -> int:
    """Where the Authorization header is (-1 for none)."""
    for at, (name, _) in enumerate(headers):
        if len(name) == len(AUTHORIZATION) and name.lower() == AUTHORIZATION:
            return at
    return -1


class ApiGate:
    def __init__(
        self,
        app: ASGIApp,
        authenticator: Authenticator,
        observers: Sequence[RequestObserver] = (),
        *,
        clock: Clock | None = None,
        throttle: Throttle | None = None,
        trusted_proxies: tuple[Network, ...] = (),
        fast_routes: Sequence[FastRoute] = (),
        route_of: Callable[[Scope], str | None] = lambda scope: None,
    ) -> None:
        self.app = app
        self._authenticator = authenticator
        self._observers = tuple(observers)
        self._time = (clock or SystemClock()).time
        self._throttle = throttle or Throttle(None, None)
        self._proxies = TrustedProxies(trusted_proxies)
        self._fast_routes = tuple(fast_routes)
        self._route_of = route_of  # the route template the framework chose, for the record

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = scan(scope["headers"])
        context, scheme = self._context(scope, headers)
        attach(scope, context)
        scope["scheme"] = scheme
        added = self._added_headers(context, scheme)
        status = 500
        held_start: Message | None = None
        authorizing = is_authorize(scope["path"])
        if authorizing:
            context.route = AUTHORIZE_PATH  # refused or not, for the metrics

        async def send_with_headers(message: Message) -> None:
            nonlocal status, held_start
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), *added]
                if authorizing and status >= 400:
                    held_start = message  # sent with the body, which it must name
                    return
            elif held_start is not None:
                start, held_start = held_start, None
                if not message.get("more_body", False):
                    start = with_refusal_headers(start, message.get("body", b""))
                await send(start)
            await send(message)

        try:
            await self._admit_and_call(scope, receive, send_with_headers, added, headers)
        finally:
            if self._observers:
                self._report(scope, context, status, time.perf_counter() - started)

    async def _admit_and_call(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        added: errors.Headers,
        headers: RequestHeaders,
    ) -> None:
        if headers.size > MAX_HEADER_BYTES:
            await self._refuse(send, *_HEADERS_TOO_LARGE)
            return
        path: str = scope["path"]
        if not is_canonical(path, scope.get("raw_path")):
            await self._refuse(send, *_NON_CANONICAL_PATH)
            return
        if guarded_prefix(path) is not None:
            refusal = await self._authenticate(scope, added)
            if refusal is not None:
                await self._refuse(send, *refusal)
                return
            route = self._fast_route(scope)
            if route is not None:
                await self._serve_fast(route, scope, send)
                return
        await self.app(scope, receive, send)

    def answer_now(
        self, scope: Scope, memo: ExpressMemo | None = None
    ) -> tuple[int, errors.Headers, bytes] | None:
        """The whole answer (status, headers, body) to a GET that a fast route answers with
        200 from memory alone, reported to the observers like any other; the HTTP server
        calls this before it builds an ASGI cycle for the request (web/http_protocol.py),
        with its connection's `memo`.

        The same checks in the same order as `__call__`, each asked only whether it can pass
        without I/O: None as soon as one cannot say yes (a cache miss, a lease to ask for, any
        refusal), before anything has changed — no token taken, nothing reported — and the
        request then goes through `__call__` as it would have.
        """
        if scope["method"] != "GET":
            return None
        started = time.perf_counter()
        found = memo.recall(scope) if memo is not None else None
        if found is None:
            found = self._prepare(scope)
            if found is None:
                return None
            if memo is not None:
                memo.keep(scope, found)
        if self._throttle.refuse_client(found.client_ip) is not None:
            return None
        verifying = time.perf_counter()
        principal = self._authenticator.known_key(found.key)
        verified = time.perf_counter()
        if principal is None:
            return None
        if memo is None or memo.cleared is not principal:
            if not found.allows(principal):
                return None
            if memo is not None:
                memo.cleared = principal
        answer = found.route.answer_now(principal, found.headers)
        if answer is None:
            return None
        context = RequestContext(new_request_id(), found.client_ip, found.headers, found.via_proxy)
        added = self._added_headers(context, found.scheme)
        if not self._throttle.admit_now(principal, added):
            return None
        context.principal = principal
        context.verification_seconds = verified - verifying
        context.acting_user_id = answer.acting_user_id
        context.route = found.route.template
        attach(scope, context)
        scope["scheme"] = found.scheme
        if self._observers:
            self._report(scope, context, 200, time.perf_counter() - started)
        return 200, [*answer.headers, *added], answer.body

    def _prepare(self, scope: Scope) -> Prepared | None:
        """What the express lane's checks find from the request alone, when they all pass."""
        route = self._fast_route(scope)
        if route is None:
            return None
        headers = scan(scope["headers"])
        if (
            headers.size > MAX_HEADER_BYTES
            or not is_canonical(scope["path"], scope.get("raw_path"))
            or refuse_malformed(headers) is not None
        ):
            return None
        key = presented_key(headers.authorization)
        if key is None:
            return None
        try:
            needed = required_scopes(scope)
        except domain.KeyportError:
            return None
        client_ip, via_proxy, scheme = self._client(scope, headers)
        return Prepared(route, headers, client_ip, via_proxy, scheme, key, needed)

    def _fast_route(self, scope: Scope) -> FastRoute | None:
        for route in self._fast_routes:
            if route.handles(scope):
                return route
        return None

    def _context(self, scope: Scope, headers: RequestHeaders) -> tuple[RequestContext, str]:
        """The request's context, and its scheme (as a trusted proxy says, else its own)."""
        client_ip, via_proxy, scheme = self._client(scope, headers)
        return RequestContext(new_request_id(), client_ip, headers, via_proxy), scheme

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

    @staticmethod
    def _added_headers(context: RequestContext, scheme: str) -> errors.Headers:
        """The headers the gate adds to every answer."""
        added: errors.Headers = [(b"x-request-id", context.request_id.encode())]
        if scheme == "https":
            added.append(HSTS)
        return added

    async def _serve_fast(self, route: FastRoute, scope: Scope, send: Send) -> None:
        context_of(scope).route = route.template
        try:
            await route(scope, send)
        except domain.KeyportError as error:
            context_of(scope).auth_failure = failure_of(error)
            await self._refuse(send, *errors.render(error))
        except Exception as error:
            await self._refuse(send, *errors.render_unexpected(error))

    async def _authenticate(
        self, scope: Scope, added: errors.Headers
    ) -> tuple[int, bytes, errors.Headers] | None:
        """None when the request may go on, else the answer that refuses it."""
        context = context_of(scope)
        malformed = refuse_malformed(context.headers)
        if malformed is not None:
            return malformed
        ip = context.client_ip
        refusal = self._throttle.refuse_client(ip)
        if refusal is not None:
            return refusal
        authorization = context.headers.authorization
        try:
            principal = context.principal = await self._verify(context, authorization)
            if principal.is_token:
                self._check_token_refusals(scope, principal, context)
            self._check_restrictions(scope, principal, ip)
            refusal = await self._throttle.admit(principal, added)
        except domain.KeyportError as error:
            self._note_refusal(context, error, authorization)
            if isinstance(error, domain.AuthenticationError):
                await self._throttle.authentication_failed(ip)
            return errors.render(error)
        except Exception as error:
            return errors.render_unexpected(error)
        if refusal is not None:
            context.auth_failure = AuthOutcome.RATE_LIMITED
        return refusal

    @staticmethod
    def _check_token_refusals(scope: Scope, principal: Principal, context: RequestContext) -> None:
        """What a personal access token may never do, right after the credential and before
        the allowlist (docs/contract.md §11): raises the 403."""
        refusal = token_requests.refusal(
            scope["method"],
            scope["path"],
            scope["query_string"],
            context.headers.user_id,
            principal.owner_id,
        )
        if refusal is not None:
            raise refusal

    @staticmethod
    def _check_restrictions(scope: Scope, principal: Principal, ip: str | None) -> None:
        """The key's allowlist, then the scopes this request needs; raises the 403 (or the
        400 of a malformed `?scope=`)."""
        if principal.allowed_networks and not principal.allows_ip(ip):
            raise domain.IpNotAllowed()
        needed = required_scopes(scope)
        if needed:
            missing = principal.missing_scope(needed)
            if missing is not None:
                raise domain.InsufficientScope(missing)

    async def _verify(self, context: RequestContext, authorization: str | None) -> Principal:
        started = time.perf_counter()
        try:
            return await self._authenticator.authenticate(authorization)
        finally:
            context.verification_seconds = time.perf_counter() - started

    def _note_refusal(
        self, context: RequestContext, error: domain.KeyportError, authorization: str | None
    ) -> None:
        reason = context.auth_failure = failure_of(error)
        if reason in KEY_STATE_REFUSALS:
            # The key verified but may not be used now: its owner wants to see such attempts.
            context.refused_key_id = self._authenticator.refused_key_id(authorization)

    @staticmethod
    async def _refuse(send: Send, status: int, body: bytes, headers: errors.Headers) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _report(self, scope: Scope, context: RequestContext, status: int, latency: float) -> None:
        method, path = self._requested(scope, context)
        # Positional: a NamedTuple built from keywords costs a third more, on every request.
        record = RequestRecord(
            context.request_id,
            method,
            path,
            context.route or self._route_of(scope),
            status,
            latency,
            context.client_ip,
            context.headers.user_agent,
            context.key_id,
            context.acting_user_id,
            context.auth_failure,
            self._time() - latency,
            context.verification_seconds,
        )
        for observer in self._observers:
            try:
                observer.observe(record)
            except Exception:  # one broken observer must not silence the others
                logger.exception("request observer failed")

    @staticmethod
    def _requested(scope: Scope, context: RequestContext) -> tuple[str, str]:
        """Method and path for the log: for `/v1/authorize` asked by a trusted proxy, those of
        the original request it names (without the query, which may hold credentials)."""
        method: str = scope["method"]
        path: str = scope["path"]
        if not context.via_trusted_proxy or not is_authorize(path):
            return method, path
        headers = context.headers
        original_uri = headers.forwarded_uri or headers.original_uri
        if original_uri:
            path = original_uri.split("?", 1)[0]
        return (headers.forwarded_method or method)[:16], path
