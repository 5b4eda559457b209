"""Hostile input gets a 4xx in the documented shape, never a 500 or a stack trace: oversized
headers and bodies, broken JSON, wrong types, unknown fields, huge numbers, ids that are not
UUIDs, control characters and non-ASCII in headers and fields. What reaches the database (ids,
field values: PostgreSQL refuses a NUL in text, SQLite does not) on SQLite and PostgreSQL; what
is refused before (sizes, parsing, headers, the path) on SQLite (`sqlite_only`).
"""

from __future__ import annotations

import unicodedata
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyport.bootstrap import Container, build_container
from keyport.web.app import create_app
from tests.conftest import Tenant

USER_HEADER = "x-meetergo-api-user-id"
NEW_USER = {"email": "new@acme.test", "givenName": "New", "familyName": "User", "timezone": "UTC"}
HOSTILE_TEXT = ["\x00", "a\x00b", "\x1b[31m", "\u202e", "\ud7ff\ufffe", "\t\n", "é" * 5, "😀"]
REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    413: "Request Entity Too Large",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
}


def assert_documented_error(answer: httpx.Response, status: int | None = None) -> None:
    """A 4xx in the NestJS shape; no stack trace, no framework's own error format."""
    assert 400 <= answer.status_code < 500, answer.text
    if status is not None:
        assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["statusCode"] == answer.status_code
    assert body["error"] == REASONS[answer.status_code]
    assert isinstance(body["message"], str) and "Traceback" not in answer.text
    assert set(body) <= {"statusCode", "message", "error", "errors"}
    assert answer.headers["content-type"] == "application/json"


def validation_errors(answer: httpx.Response) -> list[dict[str, str]]:
    assert_documented_error(answer, 400)
    assert answer.json()["message"] == "Validation failed"
    errors: list[dict[str, str]] = answer.json()["errors"]
    return errors


@pytest.mark.sqlite_only
async def test_headers_over_16_kib_are_refused_with_431(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    for path in ["/v4/user/me", "/healthz", "/admin/login"]:
        answer = await client.get(path, headers={**tenant.auth(), "X-Padding": "p" * 17_000})
        assert_documented_error(answer, 431)
        assert answer.json()["message"] == "Request Header Fields Too Large"
    many = {f"X-Header-{n}": "v" * 40 for n in range(400)}
    assert_documented_error(await client.get("/v4/user/me", headers=many), 431)
    just_fits = await client.get(
        "/v4/user/me", headers={**tenant.auth(), "X-Padding": "p" * 15_000}
    )
    assert just_fits.status_code == 200


@pytest.mark.sqlite_only
async def test_bodies_over_64_kib_are_refused_with_413(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    big = {**NEW_USER, "givenName": "x" * 70_000}
    answer = await client.post("/v4/user", json=big, headers=tenant.auth())
    assert_documented_error(answer, 413)
    assert answer.json()["message"] == "Payload Too Large"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the size shows as it comes
        for _ in range(20):
            yield b" " * 4096

    streamed = await client.patch(
        f"/v4/user/{tenant.member.id}", content=chunks(), headers=tenant.auth(tenant.owner)
    )
    assert_documented_error(streamed, 413)


@pytest.mark.sqlite_only
@pytest.mark.parametrize(
    "raw",
    [
        b"{",
        b"[]",
        b"null",
        b'"text"',
        b"{'single': 'quotes'}",
        b"\xff\xfe",
        b'{"email": "\\ud800"}',
    ],
)
async def test_malformed_json_is_a_validation_error(
    client: httpx.AsyncClient, tenant: Tenant, raw: bytes
) -> None:
    answer = await client.post(
        "/v4/user", content=raw, headers={**tenant.auth(), "content-type": "application/json"}
    )
    assert validation_errors(answer)[0]["field"] in {"body", "email"}


@pytest.mark.sqlite_only
async def test_wrong_types_unknown_fields_and_huge_numbers_name_the_field(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    cases = [
        ({**NEW_USER, "email": 5}, "email"),
        ({**NEW_USER, "givenName": ["a"]}, "givenName"),
        ({**NEW_USER, "timezone": {"zone": "UTC"}}, "timezone"),
        ({**NEW_USER, "isAdmin": True}, "isAdmin"),
        ({**NEW_USER, "slug": 10**400}, "slug"),
        ({k: v for k, v in NEW_USER.items() if k != "email"}, "email"),
    ]
    for body, field in cases:
        answer = await client.post("/v4/user", json=body, headers=tenant.auth())
        assert [e["field"] for e in validation_errors(answer)] == [field], body
    huge = b'{"givenName": 1e400}'
    answer = await client.patch(
        f"/v4/user/{tenant.member.id}",
        content=huge,
        headers={**tenant.auth(tenant.owner), "content-type": "application/json"},
    )
    assert validation_errors(answer)[0]["field"] == "givenName"


@pytest.mark.sqlite_only
@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=101",
        "limit=1e3",
        "limit=99999999999999999999999",
        "offset=-1",
        "offset=99999999999999999999",
        "offset=2147483648",
        "userType=admin",
        "limit=%00",
    ],
)
async def test_bad_query_parameters_are_validation_errors(
    client: httpx.AsyncClient, tenant: Tenant, query: str
) -> None:
    answer = await client.get(f"/v4/user?{query}", headers=tenant.auth(tenant.owner))
    assert validation_errors(answer)


@pytest.mark.parametrize(
    "user_id",
    [
        "not-a-uuid",
        "0",
        "{00000000-0000-0000-0000-000000000000}",
        "%C3%A9" * 12,
        "00000000000000000000000000000000",
        "-" * 36,
        "a" * 5000,
    ],
)
async def test_ids_that_are_not_uuids_are_not_found(
    client: httpx.AsyncClient, tenant: Tenant, user_id: str
) -> None:
    for method in ["GET", "PATCH", "DELETE"]:
        answer = await client.request(
            method,
            f"/v4/user/{user_id}",
            json={"givenName": "X"} if method == "PATCH" else None,
            headers=tenant.auth(tenant.owner),
        )
        assert_documented_error(answer, 404)


@pytest.mark.sqlite_only
async def test_a_control_character_in_the_path_is_refused_as_non_canonical(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    """web/paths.py: such a path is refused before routing, on every prefix (issue 9)."""
    for path in ["/v4/user/%00", "/v4/user/%1b", "/admin/static/admin.css%00.html", "/x%7f"]:
        answer = await client.get(path, headers=tenant.auth(tenant.owner))
        assert_documented_error(answer, 400)
        assert answer.json()["message"] == "Invalid request path"


async def test_control_characters_and_non_ascii_in_every_field(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    for field in ["email", "givenName", "familyName", "timezone", "slug"]:
        for n, text in enumerate(HOSTILE_TEXT):
            body = {**NEW_USER, "email": f"{n}.{field}@acme.test", "slug": f"slug-{field}-{n}"}
            body[field] += text
            answer = await client.post("/v4/user", json=body, headers=tenant.auth())
            if answer.status_code == 201:  # letters are fine in names, edges trimmed, slugs made
                await assert_stored_clean(client, tenant, answer.json()["userId"])
            else:
                assert [e["field"] for e in validation_errors(answer)] == [field], body


async def assert_stored_clean(client: httpx.AsyncClient, tenant: Tenant, user_id: str) -> None:
    stored = (await client.get(f"/v4/user/{user_id}", headers=tenant.auth(tenant.owner))).json()
    texts = [value for value in stored.values() if isinstance(value, str)]
    assert not [c for text in texts for c in text if unicodedata.category(c).startswith("C")]


@pytest.mark.sqlite_only
@pytest.mark.parametrize("value", [b"\xff" * 36, "é".encode("latin-1") * 36, b"\x01" * 36, b""])
async def test_control_characters_and_non_ascii_in_the_headers(
    client: httpx.AsyncClient, tenant: Tenant, value: bytes
) -> None:
    key = tenant.auth()["Authorization"].encode()
    as_user = await client.get(
        "/v4/user", headers=[(b"authorization", key), (USER_HEADER.encode(), value)]
    )
    assert_documented_error(as_user, 400)
    as_key = await client.get("/v4/user/me", headers=[(b"authorization", b"Bearer " + value * 3)])
    assert_documented_error(as_key, 401)


@pytest.fixture
async def unthrottled(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    """The same service without rate limits: a property test is one very busy client."""
    relaxed = build_container(
        replace(container.settings, rate_limit=0, auth_failure_limit=0), clock=container.clock
    )
    transport = httpx.ASGITransport(app=create_app(relaxed, run_background=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://keyport.test") as http:
        yield http
    await relaxed.close()


header_bytes = st.binary(max_size=120).filter(lambda raw: b"\r" not in raw and b"\n" not in raw)
DOCUMENTED: dict[int, set[str]] = {
    400: {
        "Missing required header 'x-meetergo-api-user-id' for API key authentication",
        "Invalid user: x-meetergo-api-user-id must be a UUID",
    },
    401: {"Missing authorization header", "Invalid API key"},
    403: {"Invalid user: no such user in this company"},
}


@pytest.mark.sqlite_only
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(authorization=st.one_of(st.none(), header_bytes), user=st.one_of(st.none(), header_bytes))
async def test_any_header_bytes_get_a_documented_answer(
    unthrottled: httpx.AsyncClient, tenant: Tenant, authorization: bytes | None, user: bytes | None
) -> None:
    for key in [authorization, tenant.auth()["Authorization"].encode()]:
        headers: list[tuple[bytes, Any]] = []
        if key is not None:
            headers.append((b"authorization", key))
        if user is not None:
            headers.append((USER_HEADER.encode(), user))
        answer = await unthrottled.get("/v4/user", headers=headers)
        if answer.status_code == 200:
            continue
        assert_documented_error(answer)
        assert answer.json()["message"] in DOCUMENTED[answer.status_code]
