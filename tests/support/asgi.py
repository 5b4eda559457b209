"""One request through an ASGI application in this process, as a server would pass it on."""

from __future__ import annotations

from typing import Any

Headers = list[tuple[bytes, bytes]]


async def call(app: Any, scope: dict[str, Any]) -> tuple[int, Headers, bytes]:
    """The answer's status, headers and body (a request without a body)."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], list(start["headers"]), body
