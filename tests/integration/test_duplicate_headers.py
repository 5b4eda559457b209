"""Issue 9, item 8: `Authorization` or `x-meetergo-api-user-id` sent twice is refused with 400
`Duplicate header: <name>` before any other check and is not a failed authentication
(docs/contract.md §2): a proxy that reads the other copy must never disagree with us about
who is calling. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from keyport.bootstrap import Container, build_container
from keyport.web.app import create_app
from tests.conftest import Tenant

# Headers are parsed and refused before any storage is read.
pytestmark = pytest.mark.sqlite_only

USER_HEADER = b"x-meetergo-api-user-id"


def duplicate_body(name: str) -> dict[str, object]:
    return {"statusCode": 400, "message": f"Duplicate header: {name}", "error": "Bad Request"}


async def test_two_authorization_headers_are_refused_whatever_their_case(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    mine, theirs = (
        tenant.auth()["Authorization"].encode(),
        other_tenant.auth()["Authorization"].encode(),
    )
    for headers in (
        [(b"Authorization", mine), (b"Authorization", theirs)],
        [(b"authorization", mine), (b"AUTHORIZATION", mine)],
        [(b"authorization", b"Bearer nonsense"), (b"authorization", mine)],
    ):
        answer = await client.get("/v4/user/me", headers=headers)
        assert answer.status_code == 400
        assert answer.json() == duplicate_body("authorization")
        assert answer.headers["content-type"] == "application/json"
        assert "x-request-id" in answer.headers
        assert "www-authenticate" not in answer.headers


async def test_two_user_headers_are_refused_before_the_key_is_looked_at(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    owner, member = tenant.owner.id.encode(), tenant.member.id.encode()
    key = tenant.auth()["Authorization"].encode()
    cases = [
        [(b"authorization", key), (USER_HEADER, owner), (USER_HEADER, member)],
        [(USER_HEADER, owner), (USER_HEADER, owner)],  # no key at all: still the duplicate
        [(b"authorization", b"Bearer ak_live:wrong"), (USER_HEADER, b"x"), (USER_HEADER, b"y")],
    ]
    for headers in cases:
        answer = await client.get("/v4/user", headers=headers)
        assert answer.status_code == 400
        assert answer.json() == duplicate_body("x-meetergo-api-user-id")


async def test_one_of_each_is_no_duplicate(client: httpx.AsyncClient, tenant: Tenant) -> None:
    headers = [
        (b"authorization", tenant.auth()["Authorization"].encode()),
        (USER_HEADER, tenant.admin.id.encode()),
    ]
    answer = await client.get("/v4/user/me", headers=headers)
    assert answer.status_code == 200 and answer.json()["id"] == tenant.admin.id


@pytest.fixture
async def strict(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    """Three failed authentications a minute per IP."""
    built = build_container(
        replace(container.settings, auth_failure_limit=3), clock=container.clock
    )
    transport = httpx.ASGITransport(app=create_app(built, run_background=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://keyport.test") as http:
        yield http
    await built.close()


async def test_duplicates_are_not_counted_as_failed_authentications(
    strict: httpx.AsyncClient, tenant: Tenant
) -> None:
    bad = b"Bearer ak_live:guess"
    for _ in range(20):
        answer = await strict.get("/v4/user/me", headers=[(b"authorization", bad)] * 2)
        assert answer.status_code == 400
    good = await strict.get("/v4/user/me", headers=tenant.auth())
    assert good.status_code == 200
    # ... while the same IP's real failures still are, and then the duplicate still answers 400.
    for _ in range(3):
        assert (
            await strict.get("/v4/user/me", headers=[(b"authorization", bad)])
        ).status_code == 401
    assert (await strict.get("/v4/user/me", headers=tenant.auth())).status_code == 429
    duplicated = await strict.get("/v4/user/me", headers=[(b"authorization", bad)] * 2)
    assert duplicated.json() == duplicate_body("authorization")


async def test_duplicates_outside_the_api_are_left_alone(client: httpx.AsyncClient) -> None:
    answer = await client.get(
        "/healthz", headers=[(b"authorization", b"a"), (b"authorization", b"b")]
    )
    assert answer.status_code == 200


@pytest.mark.parametrize("path", ["/v1/keys", "/v1/authorize", "/v4/nothing-here", "/V4/user"])
async def test_every_api_prefix_refuses_duplicates_first(
    client: httpx.AsyncClient, tenant: Tenant, path: str
) -> None:
    key = tenant.auth()["Authorization"].encode()
    answer = await client.get(path, headers=[(b"authorization", key), (b"authorization", key)])
    assert answer.status_code == 400
    assert answer.json() == duplicate_body("authorization")
