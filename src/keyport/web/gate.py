"""Plain ASGI middleware in front of the framework: request ids, API key authentication, and
one RequestRecord per request for the observers (usage, metrics, logs).

It runs before routing, so every `/v4` request, even to an unknown path, is authenticated
first, and a refused key costs no framework work at all.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from keyport.domain import errors as domain
from keyport.domain.clock import Clock, SystemClock
from keyport.domain.principal import Principal
from keyport.domain.usage import KEY_STATE_REFUSALS
from keyport.services.authentication import Authenticator, key_id_of
from keyport.services.requests import RequestObserver, RequestRecord
from keyport.web import errors

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[..., Awaitable[None]]
logger = logging.getLogger(__name__)

PRINCIPAL = "keyport.principal"
REQUEST_ID = "keyport.request_id"
ACTING_USER_ID = "keyport.acting_user_id"
AUTH_FAILURE = "keyport.auth_failure"
REFUSED_KEY_ID = "keyport.refused_key_id"  # a real key refused for its state (expired...)
VERIFICATION = "keyport.verification_seconds"
API_PREFIX = "/v4"

_AUTH_FAILURE_REASONS: dict[type[domain.KeyportError], str] = {
    domain.MissingAuthorization: "missing",
    domain.InvalidApiKey: "invalid",
    domain.ExpiredApiKey: "expired",
    domain.DeactivatedApiKey: "deactivated",
    domain.MissingActingUserHeader: "missing_user_header",
    domain.InvalidActingUserHeader: "invalid_user_header",
    domain.UnknownActingUser: "invalid_user",
}


def auth_failure_reason(error: domain.KeyportError) -> str | None:
    return _AUTH_FAILURE_REASONS.get(type(error))


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def new_request_id() -> str:
    return os.urandom(12).hex()


class ApiGate:
    def __init__(
        self,
        app: ASGIApp,
        authenticator: Authenticator,
        observers: Sequence[RequestObserver] = (),
        *,
        clock: Clock | None = None,
    ) -> None:
        self.app = app
        self._authenticator = authenticator
        self._observers = tuple(observers)
        self._time = (clock or SystemClock()).time

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = new_request_id()
        scope[REQUEST_ID] = request_id
        request_id_bytes = request_id.encode()
        status = 500

        async def send_with_request_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", ()),
                    (b"x-request-id", request_id_bytes),
                ]
            await send(message)

        try:
            await self._authenticate_and_call(scope, receive, send_with_request_id)
        finally:
            if self._observers:
                self._report(scope, status, time.perf_counter() - started)

    async def _authenticate_and_call(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        if path.startswith(API_PREFIX) and (len(path) == 3 or path[3] == "/"):
            authorization = header(scope, b"authorization")
            try:
                scope[PRINCIPAL] = await self._verify(scope, authorization)
            except domain.KeyportError as error:
                self._note_refusal(scope, error, authorization)
                await self._refuse(send, *errors.render(error))
                return
            except Exception as error:
                await self._refuse(send, *errors.render_unexpected(error))
                return
        await self.app(scope, receive, send)

    async def _verify(self, scope: Scope, authorization: str | None) -> Principal:
        started = time.perf_counter()
        try:
            return await self._authenticator.authenticate(authorization)
        finally:
            scope[VERIFICATION] = time.perf_counter() - started

    @staticmethod
    def _note_refusal(scope: Scope, error: domain.KeyportError, authorization: str | None) -> None:
        reason = auth_failure_reason(error)
        scope[AUTH_FAILURE] = reason
        if reason in KEY_STATE_REFUSALS:
            # The key verified but may not be used now: its owner wants to see such attempts.
            scope[REFUSED_KEY_ID] = key_id_of(authorization)

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

    def _report(self, scope: Scope, status: int, latency: float) -> None:
        principal = scope.get(PRINCIPAL)
        client = scope.get("client")
        record = RequestRecord(
            request_id=scope[REQUEST_ID],
            method=scope["method"],
            path=scope["path"],
            route=scope.get("path_template"),
            status=status,
            latency=latency,
            client_ip=client[0] if client else None,
            user_agent=header(scope, b"user-agent"),
            key_id=principal.key_id if principal is not None else scope.get(REFUSED_KEY_ID),
            acting_user_id=scope.get(ACTING_USER_ID),
            auth_failure=scope.get(AUTH_FAILURE),
            started_at=self._time() - latency,
            verification_latency=scope.get(VERIFICATION),
        )
        for observer in self._observers:
            try:
                observer.observe(record)
            except Exception:  # one broken observer must not silence the others
                logger.exception("request observer failed")
