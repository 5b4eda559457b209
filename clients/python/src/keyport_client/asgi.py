"""Keyport in front of any ASGI app (Starlette, FastAPI, Litestar, Quart...):

    from keyport_client.asgi import KeyportMiddleware

    app.add_middleware(KeyportMiddleware, keyport_url="http://keyport:8000",
                       scopes={"/orders": "orders:read"}, exclude=["/health"])

or `app = KeyportMiddleware(app, "http://keyport:8000")` for any ASGI callable. Each HTTP request
is asked of Keyport once; an allowed one reaches the app with `request.state.keyport` (the
`Identity`, in `scope["state"]["keyport"]`), a refused one gets Keyport's answer exactly and
never reaches the app. Lifespan and WebSocket scopes pass through untouched (a WebSocket is
not guarded: check it in its handler). FastAPI routes can name scopes and a cost of their own
(`keyport_client.fastapi.require`): they ride on the same single question.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping, Sequence
from typing import Any
from urllib.parse import quote

from keyport_client._decision import Needs, Refusal
from keyport_client._gate import DEFAULT_TIMEOUT, USER_HEADER, Gate, Incoming, RefusalHook

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
# Finds what the route a request will reach needs of its own (keyport_client.fastapi adds one).
RouteNeeds = Callable[[Any, Scope], Needs | None]
route_needs_finders: list[RouteNeeds] = []

IDENTITY_KEY = "keyport"
ASKED_KEY = "keyport_asked"  # the Needs that were asked, for per-route checks
_USER = USER_HEADER.encode()
_SPOOFABLE = (b"x-keyport", b"x_keyport")


def route_path(scope: Scope) -> str:
    """The path the app routes on: the decoded path after the mount prefix (`root_path`)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and (len(path) == len(root) or path[len(root)] == "/"):
        return path[len(root) :] or "/"
    return path


class KeyportMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        keyport_url: str,
        scopes: Mapping[str, str | Sequence[str]] | None = None,
        exclude: Iterable[str] = (),
        *,
        credential_header: str = "authorization",
        timeout: float = DEFAULT_TIMEOUT,
        trusted_proxies: Iterable[str] | str = (),
        on_refusal: RefusalHook | None = None,
    ) -> None:
        self.app = app
        self.gate = Gate(
            keyport_url,
            scopes,
            exclude,
            credential_header=credential_header,
            timeout=timeout,
            trusted_proxies=trusted_proxies,
            on_refusal=on_refusal,
        )
        self._credential = self.gate.credential_header.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = self._incoming(scope)
        path = route_path(scope)
        refusal = self.gate.path_refusal(path)
        if refusal is not None:
            await send_refusal(send, refusal)
            return
        if self.gate.excluded(path):
            await self.app(scope, receive, send)
            return
        needs = self.gate.needs(path, self._route_needs(scope))
        decided = await self.gate.ask_async(incoming, needs)
        if isinstance(decided, Refusal):
            await send_refusal(send, decided)
            return
        state = scope.get("state")
        if state is None:
            state = scope["state"] = {}
        state[IDENTITY_KEY] = decided.identity
        state[ASKED_KEY] = decided.asked
        if decided.headers:
            send = _adding(send, decided.headers)
        await self.app(scope, receive, send)

    def _route_needs(self, scope: Scope) -> Needs | None:
        if not route_needs_finders:
            return None
        app = scope.get("app") or self.app
        for finder in route_needs_finders:
            found = finder(app, scope)
            if found is not None:
                return found
        return None

    def _incoming(self, scope: Scope) -> Incoming:
        """The request's parts for the question, read in one pass over its headers; headers a
        client sent under Keyport's own names (`X-Keyport-*`) are taken out of the request."""
        credentials: list[bytes] = []
        users: list[bytes] = []
        forwarded: list[str] = []
        agent: bytes | None = None
        spoofed = False
        for name, value in scope["headers"]:
            if name == self._credential:
                credentials.append(value)
            elif name == _USER:
                users.append(value)
            elif name == b"user-agent":
                agent = value
            elif name == b"x-forwarded-for":
                forwarded.append(value.decode("latin-1"))
            elif name.startswith(_SPOOFABLE):
                spoofed = True
        if spoofed:
            scope["headers"] = [h for h in scope["headers"] if not h[0].startswith(_SPOOFABLE)]
        client = scope.get("client")
        raw: bytes | None = scope.get("raw_path")
        return Incoming(
            method=scope["method"].encode(),
            uri=raw if raw else quote(scope["path"]).encode(),
            credentials=credentials,
            user_ids=users,
            peer=str(client[0]) if client else None,
            forwarded_for=forwarded,
            user_agent=agent,
        )


async def send_refusal(send: Send, refusal: Refusal) -> None:
    headers = [(name.encode(), value.encode("latin-1")) for name, value in refusal.headers]
    headers.append((b"content-length", str(len(refusal.body)).encode()))
    await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
    await send({"type": "http.response.body", "body": refusal.body})


def _adding(send: Send, copied: list[tuple[str, str]]) -> Send:
    """`send`, with Keyport's `RateLimit-*` and credits headers put on the app's answer (in
    place of any the app set under those names)."""
    names = {name.encode() for name, _ in copied}
    encoded = [(name.encode(), value.encode("latin-1")) for name, value in copied]

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            own = [h for h in message.get("headers", ()) if bytes(h[0]).lower() not in names]
            message["headers"] = [*own, *encoded]
        await send(message)

    return sending
