"""Plain ASGI middleware in front of the framework: request ids, the client's address,
oversized headers, API key authentication, rate limits, and one RequestRecord per request for
the observers (usage, metrics, logs).

It runs before routing, so every `/v4` request, even to an unknown path, is authenticated
first, and a refused key costs no framework work at all. Order for `/v4`: an IP refused for
failed authentications (429), the key (401, counted against the IP), the key's budget (429).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any, Protocol

from keyport.config import Network
from keyport.domain import errors as domain
from keyport.domain.auth_outcomes import KEY_STATE_REFUSALS, AuthOutcome, failure_of
from keyport.domain.clock import Clock, SystemClock
from keyport.domain.principal import Principal
from keyport.services.authentication import Authenticator, key_id_of
from keyport.services.requests import RequestObserver, RequestRecord
from keyport.web import errors
from keyport.web.client_ip import resolve_client_ip
from keyport.web.request_context import RequestContext, attach, context_of
from keyport.web.throttling import Throttle

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[..., Awaitable[None]]
logger = logging.getLogger(__name__)


class FastRoute(Protocol):
    """A hot route answered in plain ASGI, after authentication, without the framework."""

    def handles(self, scope: Scope) -> bool: ...
    async def __call__(self, scope: Scope, send: Send) -> None: ...


API_PREFIX = "/v4"
# Request headers beyond this (names and values together) are refused with 431. uvicorn's
# parser has no limit of its own: web/http_protocol.py stops reading them past 1 MiB.
MAX_HEADER_BYTES = 16 * 1024
_HEADERS_TOO_LARGE = errors.render(domain.HeadersTooLarge())


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def new_request_id() -> str:
    return os.urandom(12).hex()


def headers_too_large(scope: Scope) -> bool:
    size = 0
    for key, value in scope["headers"]:
        size += len(key) + len(value)
    return size > MAX_HEADER_BYTES


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
        self._trusted_proxies = trusted_proxies
        self._fast_routes = tuple(fast_routes)
        self._route_of = route_of  # the route template the framework chose, for the record

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        context = attach(
            scope, RequestContext(new_request_id(), resolve_client_ip(scope, self._trusted_proxies))
        )
        added: errors.Headers = [(b"x-request-id", context.request_id.encode())]
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), *added]
            await send(message)

        try:
            await self._admit_and_call(scope, receive, send_with_headers, added)
        finally:
            if self._observers:
                self._report(scope, context, status, time.perf_counter() - started)

    async def _admit_and_call(
        self, scope: Scope, receive: Receive, send: Send, added: errors.Headers
    ) -> None:
        if headers_too_large(scope):
            await self._refuse(send, *_HEADERS_TOO_LARGE)
            return
        path: str = scope["path"]
        if path.startswith(API_PREFIX) and (len(path) == 3 or path[3] == "/"):
            refusal = await self._authenticate(scope, added)
            if refusal is not None:
                await self._refuse(send, *refusal)
                return
            for route in self._fast_routes:
                if route.handles(scope):
                    await self._serve_fast(route, scope, send)
                    return
        await self.app(scope, receive, send)

    async def _serve_fast(self, route: FastRoute, scope: Scope, send: Send) -> None:
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
        ip = context.client_ip
        refusal = self._throttle.refuse_client(ip)
        if refusal is not None:
            return refusal
        authorization = header(scope, b"authorization")
        try:
            principal = context.principal = await self._verify(context, authorization)
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

    async def _verify(self, context: RequestContext, authorization: str | None) -> Principal:
        started = time.perf_counter()
        try:
            return await self._authenticator.authenticate(authorization)
        finally:
            context.verification_seconds = time.perf_counter() - started

    @staticmethod
    def _note_refusal(
        context: RequestContext, error: domain.KeyportError, authorization: str | None
    ) -> None:
        reason = context.auth_failure = failure_of(error)
        if reason in KEY_STATE_REFUSALS:
            # The key verified but may not be used now: its owner wants to see such attempts.
            context.refused_key_id = key_id_of(authorization)

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
        record = RequestRecord(
            request_id=context.request_id,
            method=scope["method"],
            path=scope["path"],
            route=context.route or self._route_of(scope),
            status=status,
            latency=latency,
            client_ip=context.client_ip,
            user_agent=header(scope, b"user-agent"),
            key_id=context.key_id,
            acting_user_id=context.acting_user_id,
            auth_failure=context.auth_failure,
            started_at=self._time() - latency,
            verification_latency=context.verification_seconds,
        )
        for observer in self._observers:
            try:
                observer.observe(record)
            except Exception:  # one broken observer must not silence the others
                logger.exception("request observer failed")
