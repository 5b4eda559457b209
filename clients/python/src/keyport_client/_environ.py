"""A request's parts for the question, read from a WSGI environ or Django's `request.META`
(the same CGI-style keys under both of Django's stacks)."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any
from urllib.parse import quote

from keyport_client._gate import USER_HEADER, Incoming

Environ = MutableMapping[str, Any]
_USER_KEY = "HTTP_" + USER_HEADER.upper().replace("-", "_")
_SPOOFABLE = "HTTP_X_KEYPORT_"  # `X-Keyport-…` and `X_Keyport_…` alike


def header_key(name: str) -> str:
    return "HTTP_" + name.upper().replace("-", "_")


def _raw(text: str) -> bytes:
    """A header value as the server read it: PEP 3333 holds the bytes as latin-1 text."""
    return text.encode("latin-1", "replace")


def path_of(environ: Environ) -> str:
    """The decoded path the app routes on (after SCRIPT_NAME), as werkzeug and Django read it."""
    path: str = environ.get("PATH_INFO", "")
    return _raw(path).decode("utf-8", "replace")


def strip_spoofed(environ: Environ) -> None:
    """Takes out of the request every header a client sent under Keyport's own names."""
    spoofed = [key for key in environ if key.startswith(_SPOOFABLE)]
    for key in spoofed:
        del environ[key]


def incoming(
    environ: Environ, credential_key: str, method: str, uri: bytes | None = None
) -> Incoming:
    """`uri`: the request's path as sent, when the caller knows it better than the environ."""
    credential = environ.get(credential_key)
    user = environ.get(_USER_KEY)
    agent = environ.get("HTTP_USER_AGENT")
    forwarded = environ.get("HTTP_X_FORWARDED_FOR")
    target = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if uri is not None:
        pass
    elif target:
        uri = _raw(target.split("?", 1)[0])
    else:
        path = _raw(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""))
        uri = quote(path).encode()
    return Incoming(
        method=method.encode("latin-1", "replace"),
        uri=uri,
        credentials=[] if credential is None else [_raw(credential)],
        user_ids=[] if user is None else [_raw(user)],
        peer=environ.get("REMOTE_ADDR") or None,
        forwarded_for=[] if forwarded is None else [forwarded],
        user_agent=None if agent is None else _raw(agent),
    )
