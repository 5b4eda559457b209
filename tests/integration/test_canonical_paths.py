"""Issue 9, item 1: no spelling of an API path reaches an API handler unauthenticated.

The gate and the router must decide on the same path. Every spelling a client can send of an
API path (doubled slashes, dot segments, percent encodings, case, a trailing slash), for `/v4`
and for `/v1`, is either refused as non-canonical (400) or not found (404), or authenticated
exactly like the canonical path: refused without a key by the gate itself, answered with the
key's rate-limit headers with one. Requests are handed to the ASGI app as uvicorn builds
them (`path` percent-decoded, `raw_path` as sent), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import unquote_to_bytes

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyport.bootstrap import Container, build_container
from keyport.web.app import create_app
from keyport.web.gate import ApiGate
from tests.conftest import Tenant
from tests.support import asgi

# Path spellings are refused before any storage is read.
pytestmark = pytest.mark.sqlite_only

# Canonical API paths, the `/v1` ones included before they exist on this branch: once they
# do, the property below covers them without a change.
CANONICAL = ["/v4/user/me", "/v4/user", "/v4", "/v1/authorize", "/v1/keys", "/v1/keys/self"]
GUARD_LOGGER = "keyport.web.api.context"


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any


async def call(app: Any, raw_path: bytes, headers: list[tuple[bytes, bytes]]) -> Answer:
    """One GET as uvicorn would pass it on: the decoded path and the raw one."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": unquote_to_bytes(raw_path).decode("utf-8", "replace"),
        "raw_path": raw_path,
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"keyport.test"), *headers],
        "client": ("203.0.113.9", 50000),
        "server": ("keyport.test", 80),
    }
    status, headers_out, body = await asgi.call(app, scope)
    named = {k.decode().lower(): v.decode() for k, v in headers_out}
    return Answer(status, named, json.loads(body) if body else None)


def _percent_encode(char: str) -> str:
    return "".join(f"%{byte:02{'x' if ord(char) % 2 else 'X'}}" for byte in char.encode())


@st.composite
def spellings(draw: st.DrawFn) -> str:
    """Another way to write one of the canonical paths, as a client may send it."""
    path = draw(st.sampled_from(CANONICAL))
    segments = path.split("/")[1:]
    spelled: list[str] = []
    for segment in segments:
        for _ in range(draw(st.integers(0, 1))):
            spelled.append(draw(st.sampled_from([".", "", "%2e", "x/..", "%2E%2e", "x/%2e%2e"])))
        chars = []
        for char in segment:
            how = draw(st.sampled_from(["keep", "keep", "keep", "upper", "encode"]))
            chars.append(
                char.upper()
                if how == "upper"
                else _percent_encode(char)
                if how == "encode"
                else char
            )
        spelled.append("".join(chars))
    separator = draw(st.sampled_from(["/", "/", "//", "%2F", "%2f", "/%2F", "\\", "%5C"]))
    lead = draw(st.sampled_from(["/", "/", "//", "/%2F", "///", "/./"]))
    trailing = draw(st.sampled_from(["", "", "/", "//", "/.", "%2F", "%00", "%20", ";"]))
    return lead + separator.join(spelled) + trailing


@pytest.fixture
async def unthrottled(container: Container) -> Any:
    """The app without rate limits: a property test is one very busy client."""
    relaxed = build_container(
        replace(container.settings, rate_limit=100_000, auth_failure_limit=0),
        clock=container.clock,
    )
    yield create_app(relaxed, run_background=False)
    await relaxed.close()


def assert_json_refusal(answer: Answer, statuses: set[int]) -> None:
    assert answer.status in statuses, answer
    assert answer.body["statusCode"] == answer.status
    assert answer.headers["content-type"] == "application/json"


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(spelling=spellings())
async def test_no_spelling_of_an_api_path_reaches_a_handler_unauthenticated(
    unthrottled: ApiGate, tenant: Tenant, spelling: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=GUARD_LOGGER):
        without_key = await call(unthrottled, spelling.encode(), [])
        with_key = await call(
            unthrottled,
            spelling.encode(),
            [(b"authorization", tenant.auth()["Authorization"].encode())],
        )
    # Nobody got past the gate and was stopped only by the handlers' own guard.
    assert not [r for r in caplog.records if r.name == GUARD_LOGGER], spelling
    assert_json_refusal(without_key, {400, 401, 404})
    if without_key.status == 401:
        assert without_key.body["message"] == "Missing authorization header"
        assert without_key.headers["www-authenticate"] == "Bearer"
    if with_key.status < 400:
        # Reached a handler: then the gate verified the key and charged its budget.
        assert "ratelimit-remaining" in with_key.headers, spelling
    else:
        assert with_key.status in {400, 403, 404}, (spelling, with_key)
        assert with_key.body["statusCode"] == with_key.status


@pytest.mark.parametrize(
    "raw",
    [
        "//v4/user/me",
        "/%2Fv4/user/me",
        "/%2fv4/user/me",
        "/v4//user/me",
        "/v4/./user/me",
        "/x/../v4/user/me",
        "/v4/user/%2e%2e/user/me",
        "/v4%2Fuser%2Fme",
        "/v4/user/me%00",
        "//v1/authorize",
        "/%2Fv1/keys",
        "/admin//api-keys",
        "/admin/static/admin.css%00.html",
    ],
)
async def test_non_canonical_paths_are_refused_before_authentication(
    unthrottled: ApiGate, tenant: Tenant, raw: str
) -> None:
    for headers in ([], [(b"authorization", tenant.auth()["Authorization"].encode())]):
        answer = await call(unthrottled, raw.encode(), headers)
        assert answer.status == 400, (raw, answer)
        assert answer.body == {
            "statusCode": 400,
            "message": "Invalid request path",
            "error": "Bad Request",
        }
        assert "ratelimit-remaining" not in answer.headers


async def test_other_case_and_trailing_slash_are_authenticated_like_the_canonical_path(
    unthrottled: ApiGate, tenant: Tenant
) -> None:
    for raw in ["/V4/user/me", "/v4/USER/me", "/v4/user/me/", "/V1/authorize"]:
        answer = await call(unthrottled, raw.encode(), [])
        assert answer.status == 401, (raw, answer)
        assert answer.body["message"] == "Missing authorization header"
    me = await call(
        unthrottled, b"/v4/user/me/", [(b"authorization", tenant.auth()["Authorization"].encode())]
    )
    assert me.status == 200 and me.body["id"] == tenant.owner.id
    assert "ratelimit-remaining" in me.headers


async def test_an_api_handler_reached_without_a_key_refuses_instead_of_failing(
    container: Container, tenant: Tenant, caplog: pytest.LogCaptureFixture
) -> None:
    """Should the gate ever be bypassed, the handlers' guard answers 401, never a 500."""
    gate = create_app(container, run_background=False)
    framework = gate.app  # the router behind the gate, as if the gate had let it through
    for raw in [b"/v4/user/me", b"/v4/user", b"/v4/user/" + tenant.owner.id.encode()]:
        with caplog.at_level(logging.WARNING, logger=GUARD_LOGGER):
            answer = await call(
                framework, raw, [(b"x-meetergo-api-user-id", tenant.owner.id.encode())]
            )
        assert answer.status == 401, (raw, answer)
        assert answer.body == {
            "statusCode": 401,
            "message": "Missing authorization header",
            "error": "Unauthorized",
        }
    assert any(r.name == GUARD_LOGGER for r in caplog.records)
    assert "Traceback" not in caplog.text


async def test_the_guard_covers_any_handler_under_an_api_prefix() -> None:
    """A route added later under `/v1` (or any guarded prefix) is guarded without a change."""
    from litestar import Litestar, get

    from keyport.domain.errors import KeyportError
    from keyport.web.api.context import require_principal
    from keyport.web.app import _on_domain_error

    ran: list[str] = []

    @get(["/v1/new-thing", "/elsewhere"])
    async def new_thing() -> dict[str, str]:
        ran.append("yes")
        return {"ok": "yes"}

    app = Litestar(
        [new_thing],
        guards=[require_principal],
        exception_handlers={KeyportError: _on_domain_error},
    )
    refused = await call(app, b"/v1/new-thing", [])
    assert (refused.status, refused.body["message"]) == (401, "Missing authorization header")
    assert ran == []
    assert (await call(app, b"/elsewhere", [])).status == 200  # not an API path: no key needed
