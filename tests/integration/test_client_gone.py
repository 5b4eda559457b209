"""A client that goes away before its request body arrived (a proxy that gave up on a slow or
paused host, a closed tab) is its own doing: no 500, no traceback, nothing counted as a bug.
Found by the cluster run (tests/chaos/), where nginx gives up on a paused host."""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

import pytest

from keyport.bootstrap import Container
from keyport.web.app import create_app
from tests.conftest import Tenant


async def post_and_hang_up(container: Container, path: str, headers: dict[str, str]) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"localhost"),
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", b"100"),
            *((k.lower().encode(), v.encode()) for k, v in headers.items()),
        ],
        "client": ("203.0.113.9", 50000),
        "server": ("localhost", 80),
    }
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await create_app(container, run_background=False)(scope, receive, send)
    status: int = next(m for m in sent if m["type"] == "http.response.start")["status"]
    return status


async def test_a_sign_in_whose_form_never_arrives_is_no_server_error(
    container: Container, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        status = await post_and_hang_up(container, "/admin/login", {})
    assert status == 400
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_an_api_call_whose_body_never_arrives_is_no_server_error(
    container: Container, tenant: Tenant, caplog: pytest.LogCaptureFixture
) -> None:
    headers = {**tenant.auth(), "content-type": "application/json"}
    with caplog.at_level(logging.WARNING):
        status = await post_and_hang_up(container, "/v4/user", headers)
    assert status == 400
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
