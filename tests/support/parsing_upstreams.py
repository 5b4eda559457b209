"""Upstreams that read a request as common Python servers do, for the gateway tests: an ASGI
app under uvicorn (the path percent-decoded, `%2F` included) and a WSGI app under wsgiref
(PATH_INFO decoded; every header becomes `HTTP_<NAME>` with `-` and `_` alike). Each answers
with the path it read, the target as received and the headers as it sees them, names
lower-cased with `_` read as `-` (`HTTP_X_KEYPORT_KEY_ID` is `x-keyport-key-id`).

Run: `python -m tests.support.parsing_upstreams asgi|wsgi PORT`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from typing import Any


def _answer(path: str, target: str, headers: list[tuple[str, str]]) -> bytes:
    named: dict[str, str] = {}
    for name, value in headers:
        key = name.lower().replace("_", "-")
        named[key] = f"{named[key]}, {value}" if key in named else value
    return json.dumps({"path": path, "target": target, "headers": named}).encode()


async def asgi_echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    target = scope["raw_path"].decode("latin-1")
    if scope["query_string"]:
        target += "?" + scope["query_string"].decode("latin-1")
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
    body = _answer(scope["path"], target, headers)
    start = [(b"content-type", b"application/json"), (b"x-echo", b"asgi")]
    await send({"type": "http.response.start", "status": 200, "headers": start})
    await send({"type": "http.response.body", "body": body})


def wsgi_echo(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    target = environ.get("RAW_URI") or environ["PATH_INFO"]
    headers = [(k.removeprefix("HTTP_"), v) for k, v in environ.items() if k.startswith("HTTP_")]
    body = _answer(environ["PATH_INFO"], target, headers)
    start_response("200 OK", [("Content-Type", "application/json"), ("X-Echo", "wsgi")])
    return [body]


def _serve_wsgi(port: int) -> None:
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    with make_server("127.0.0.1", port, wsgi_echo, handler_class=Quiet) as server:
        server.serve_forever()


def _serve_asgi(port: int) -> None:
    import uvicorn

    uvicorn.run(asgi_echo, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    kind, port = sys.argv[1], int(sys.argv[2])
    (_serve_asgi if kind == "asgi" else _serve_wsgi)(port)
