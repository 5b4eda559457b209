"""Plain ASGI middleware in front of the framework: request ids and API key authentication.

It runs before routing, so every `/v4` request, even to an unknown path, is authenticated
first, and a refused key costs no framework work at all.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from keyport.domain.errors import KeyportError
from keyport.services.authentication import Authenticator
from keyport.web import errors

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[..., Awaitable[None]]

PRINCIPAL = "keyport.principal"
REQUEST_ID = "keyport.request_id"
API_PREFIX = "/v4"


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def new_request_id() -> str:
    return os.urandom(12).hex()


async def send_error(send: Send, status: int, body: bytes, headers: errors.Headers,
                     request_id: bytes) -> None:
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [*headers, (b"content-length", str(len(body)).encode()),
                    (b"x-request-id", request_id)],
    })
    await send({"type": "http.response.body", "body": body})


class ApiGate:
    def __init__(self, app: ASGIApp, authenticator: Authenticator) -> None:
        self.app = app
        self._app = app
        self._authenticator = authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        request_id = new_request_id()
        scope[REQUEST_ID] = request_id
        request_id_bytes = request_id.encode()

        async def send_with_request_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()),
                                      (b"x-request-id", request_id_bytes)]
            await send(message)

        path: str = scope["path"]
        if path.startswith(API_PREFIX) and (len(path) == 3 or path[3] == "/"):
            try:
                scope[PRINCIPAL] = await self._authenticator.authenticate(
                    header(scope, b"authorization")
                )
            except KeyportError as error:
                await send_error(send, *errors.render(error), request_id_bytes)
                return
            except Exception as error:
                await send_error(send, *errors.render_unexpected(error), request_id_bytes)
                return
        await self._app(scope, receive, send_with_request_id)
