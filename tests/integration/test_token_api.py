"""`/v1/tokens`: a company key holding keys:manage lists, reads and revokes the company's
personal access tokens; exact answers."""

from __future__ import annotations

from datetime import timedelta

import httpx

from keyport.bootstrap import Container
from keyport.domain.audit import Actor
from keyport.domain.clock import FixedClock
from keyport.domain.personal_tokens import IssuedToken
from tests.conftest import Tenant


async def _manager_key(c: Container, tenant: Tenant) -> dict[str, str]:
    issued = await c.keys.issue_key(
        tenant.company_id, name="ops", days=30, scopes=["*", "keys:manage"], actor=Actor.cli()
    )
    return {"Authorization": f"Bearer {issued.key}"}


async def _token(c: Container, tenant: Tenant, name: str = "Laptop") -> IssuedToken:
    return await c.tokens.issue(
        tenant.member, name=name, days=30, scopes=["users:read"], actor=Actor.cli()
    )


async def test_a_manager_key_lists_gets_and_revokes_a_token(
    container: Container, client: httpx.AsyncClient, tenant: Tenant, clock: FixedClock
) -> None:
    auth = await _manager_key(container, tenant)
    first = await _token(container, tenant, "One")
    clock.advance(timedelta(seconds=1))
    second = await _token(container, tenant, "Two")
    listed = await client.get("/v1/tokens?limit=1", headers=auth)
    assert listed.status_code == 200
    body = listed.json()
    assert [t["id"] for t in body["tokens"]] == [second.record.id]
    assert body["tokens"][0] == {
        "id": second.record.id,
        "name": "Two",
        "userId": tenant.member.id,
        "status": "active",
        "scopes": ["users:read"],
        "createdAt": body["tokens"][0]["createdAt"],
        "expiresAt": body["tokens"][0]["expiresAt"],
        "lastUsedAt": None,
        "hint": second.token[:8] + "…",
        "leak": None,
    }
    rest = await client.get(f"/v1/tokens?limit=1&cursor={body['nextCursor']}", headers=auth)
    assert [t["id"] for t in rest.json()["tokens"]] == [first.record.id]
    assert rest.json()["nextCursor"] is None
    mine = await client.get(f"/v1/tokens?userId={tenant.owner.id}", headers=auth)
    assert mine.json() == {"tokens": [], "nextCursor": None}

    got = await client.get(f"/v1/tokens/{first.record.id}", headers=auth)
    assert got.json()["name"] == "One"
    revoked = await client.post(f"/v1/tokens/{first.record.id}/revoke", headers=auth)
    assert (revoked.status_code, revoked.json()["status"]) == (200, "revoked")
    again = await client.post(f"/v1/tokens/{first.record.id}/revoke", headers=auth)
    assert again.status_code == 409
    assert again.json() == {
        "statusCode": 409,
        "message": "Personal access token is already revoked",
        "error": "Conflict",
    }
    [notice] = await container.tokens.notices(tenant.member)
    assert notice.revoke_reason == "revoked with a company API key"


async def test_another_companys_token_is_not_found(
    container: Container, client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    auth = await _manager_key(container, tenant)
    theirs = await _token(container, other_tenant)
    for answer in (
        await client.get(f"/v1/tokens/{theirs.record.id}", headers=auth),
        await client.post(f"/v1/tokens/{theirs.record.id}/revoke", headers=auth),
        await client.get("/v1/tokens/not-a-uuid", headers=auth),
    ):
        assert answer.status_code == 404
        assert answer.json() == {
            "statusCode": 404,
            "message": "Personal access token not found",
            "error": "Not Found",
        }


async def test_keys_manage_and_an_owner_or_admin_are_required(
    container: Container, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    plain = await client.get("/v1/tokens", headers=tenant.auth())
    assert plain.status_code == 403
    assert plain.json() == {
        "statusCode": 403,
        "message": "Insufficient scope: requires keys:manage",
        "error": "Forbidden",
    }
    auth = await _manager_key(container, tenant) | {"x-meetergo-api-user-id": tenant.member.id}
    member = await client.get("/v1/tokens", headers=auth)
    assert member.status_code == 403
    assert member.json()["message"] == "Only owners and admins can manage API keys"
