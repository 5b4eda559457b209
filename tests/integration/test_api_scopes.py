"""Scopes and allowlists on the v4 user API (docs/contract.md §6): users:read to read,
users:write to write, the exact 403 bodies, and the order against the acting-user checks."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from keyport.bootstrap import Container
from keyport.domain.audit import Actor
from tests.conftest import Tenant

USER_HEADER = "x-meetergo-api-user-id"


def forbidden(message: str) -> dict[str, object]:
    return {"statusCode": 403, "message": message, "error": "Forbidden"}


async def key_with(container: Container, tenant: Tenant, **restrictions: Any) -> dict[str, str]:
    issued = await container.keys.issue_key(
        tenant.company_id, name="restricted", days=10, actor=Actor.cli(), **restrictions
    )
    return {"Authorization": f"Bearer {issued.key}"}


async def test_users_read_reads_but_does_not_write(
    client: httpx.AsyncClient, container: Container, tenant: Tenant
) -> None:
    auth = await key_with(container, tenant, scopes=["users:read"])
    assert (await client.get("/v4/user/me", headers=auth)).status_code == 200
    listed = await client.get("/v4/user", headers={**auth, USER_HEADER: tenant.owner.id})
    assert listed.status_code == 200
    created = await client.post(
        "/v4/user",
        headers=auth,
        json={"email": "x@acme.test", "givenName": "X", "familyName": "Y", "timezone": "UTC"},
    )
    assert created.status_code == 403
    assert created.json() == forbidden("Insufficient scope: requires users:write")
    deleted = await client.delete(
        f"/v4/user/{tenant.member.id}", headers={**auth, USER_HEADER: tenant.owner.id}
    )
    assert deleted.json() == forbidden("Insufficient scope: requires users:write")


async def test_users_write_writes_but_does_not_read(
    client: httpx.AsyncClient, container: Container, tenant: Tenant
) -> None:
    auth = await key_with(container, tenant, scopes=["users:write"])
    me = await client.get("/v4/user/me", headers=auth)
    assert me.status_code == 403
    assert me.json() == forbidden("Insufficient scope: requires users:read")
    patched = await client.patch(
        f"/v4/user/{tenant.member.id}",
        headers={**auth, USER_HEADER: tenant.owner.id},
        json={"givenName": "Maxi"},
    )
    assert patched.status_code == 200


async def test_an_operator_scope_alone_opens_no_v4_user_endpoint(
    client: httpx.AsyncClient, container: Container, tenant: Tenant
) -> None:
    auth = await key_with(container, tenant, scopes=["orders:read"])
    answer = await client.get("/v4/user/me", headers=auth)
    assert answer.json() == forbidden("Insufficient scope: requires users:read")
    # Other /v4 paths need no scope: they answer as before (404).
    assert (await client.get("/v4/calendars", headers=auth)).status_code == 404


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
async def test_reading_methods_need_users_read(
    client: httpx.AsyncClient, container: Container, tenant: Tenant, method: str
) -> None:
    auth = await key_with(container, tenant, scopes=["users:write"])
    answer = await client.request(method, "/v4/user/me", headers=auth)
    assert answer.status_code == 403


async def test_scope_is_checked_before_the_acting_user(
    client: httpx.AsyncClient, container: Container, tenant: Tenant
) -> None:
    auth = await key_with(container, tenant, scopes=["users:read"])
    answer = await client.delete(
        f"/v4/user/{tenant.member.id}", headers={**auth, USER_HEADER: "not-a-uuid"}
    )
    assert answer.json() == forbidden("Insufficient scope: requires users:write")


async def test_the_allowlist_refuses_v4_from_elsewhere(
    client: httpx.AsyncClient, container: Container, tenant: Tenant
) -> None:
    # The test client connects from 203.0.113.7.
    inside = await key_with(container, tenant, allowed_ips=["203.0.113.0/24"])
    assert (await client.get("/v4/user/me", headers=inside)).status_code == 200
    outside = await key_with(container, tenant, allowed_ips=["2001:db8::/32", "10.0.0.0/8"])
    answer = await client.get("/v4/user/me", headers=outside)
    assert answer.status_code == 403
    assert answer.json() == forbidden("API key is not allowed from this IP address")


async def test_changing_scopes_takes_effect_on_the_next_request(
    client: httpx.AsyncClient, container: Container, tenant: Tenant
) -> None:
    assert (await client.get("/v4/user/me", headers=tenant.auth())).status_code == 200
    await container.keys.set_scopes(tenant.company_id, tenant.key_id, ["users:write"], Actor.cli())
    assert (await client.get("/v4/user/me", headers=tenant.auth())).status_code == 403
    await container.keys.set_scopes(tenant.company_id, tenant.key_id, None, Actor.cli())
    assert (await client.get("/v4/user/me", headers=tenant.auth())).status_code == 200
