"""A raw ASGI hello world: the floor any Python server stands on (bench/hotpath_compare.py)."""

from __future__ import annotations

from typing import Any

_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"application/json"), (b"content-length", b"17")],
}
_BODY = {"type": "http.response.body", "body": b'{"hello":"world"}'}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send(_START)
    await send(_BODY)
