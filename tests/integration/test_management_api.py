"""`/v1/keys` (docs/contract.md §8): every operation, every refusal, cross-company, escalation."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from keyport.bootstrap import Container
from keyport.db.tables import audit_events
from keyport.domain.audit import Actor
from keyport.domain.clock import FixedClock
from keyport.domain.key_events import iso_utc
from keyport.services.keys.management_api import DEFAULT_KEY_HINT
from tests.conftest import Tenant
from tests.support.api_calls import KEY_FIELDS, validation_failed


def forbidden(message: str) -> dict[str, object]:
    return {"statusCode": 403, "message": message, "error": "Forbidden"}


async def manager_key(c: Container, tenant: Tenant, *scopes: str) -> str:
    issued = await c.keys.issue_key(
        tenant.company_id,
        name="manager",
        days=30,
        actor=Actor.cli(),
        scopes=list(scopes) or ["keys:manage", "*"],
    )
    return issued.key


def bearer(key: str, user_id: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {key}"}
    if user_id:
        headers["x-meetergo-api-user-id"] = user_id
    return headers


@pytest.fixture
async def manager(container: Container, tenant: Tenant) -> dict[str, str]:
    return bearer(await manager_key(container, tenant))


async def test_a_key_without_keys_manage_is_refused(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    answer = await client.get("/v1/keys", headers=tenant.auth())
    assert (answer.status_code, answer.json()) == (
        403,
        forbidden("Insufficient scope: requires keys:manage"),
    )


async def test_a_member_is_refused_an_admin_is_not(
    container: Container, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    key = await manager_key(container, tenant)
    answer = await client.get("/v1/keys", headers=bearer(key, tenant.member.id))
    assert (answer.status_code, answer.json()) == (
        403,
        forbidden("Only owners and admins can manage API keys"),
    )
    assert (await client.get("/v1/keys", headers=bearer(key, tenant.admin.id))).status_code == 200


async def test_create_answers_the_key_once_and_it_works(
    container: Container,
    client: httpx.AsyncClient,
    tenant: Tenant,
    manager: dict[str, str],
    clock: FixedClock,
) -> None:
    answer = await client.post(
        "/v1/keys",
        headers=manager,
        json={
            "name": "CI",
            "expiresInDays": 7,
            "scopes": ["users:read"],
            "allowedIps": ["10.0.0.0/8"],
            "rateLimit": 30,
        },
    )
    assert answer.status_code == 201
    body = answer.json()
    assert set(body) == KEY_FIELDS | {"key"}
    assert body["key"].startswith(f"ak_live:{body['id']}:")
    assert {k: body[k] for k in ("name", "status", "scopes", "allowedIps", "rateLimit")} == {
        "name": "CI",
        "status": "active",
        "scopes": ["users:read"],
        "allowedIps": ["10.0.0.0/8"],
        "rateLimit": 30,
    }
    assert body["expiresAt"] == iso_utc(clock.now() + timedelta(days=7))
    fetched = await client.get(f"/v1/keys/{body['id']}", headers=manager)
    assert fetched.status_code == 200 and "key" not in fetched.json()
    assert set(fetched.json()) == KEY_FIELDS
    async with container.engine.connect() as connection:
        row = (
            await connection.execute(
                select(audit_events).where(audit_events.c.target_id == body["id"])
            )
        ).one()
    assert (row.action, row.actor_label, row.actor_user_id) == (
        "api_key.created",
        "api_key",
        tenant.owner.id,
    )
    assert row.actor_key_id is not None and row.actor_key_id != body["id"]


async def test_a_key_never_hands_out_a_scope_it_lacks(
    container: Container, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    limited = bearer(await manager_key(container, tenant, "keys:manage", "users:read"))
    # Issue 33, item 9: asking for a full-access key says what to do instead.
    hint = {"errors": [{"field": "scopes", "message": DEFAULT_KEY_HINT.message}]}
    for scopes, missing, more in (
        (None, "*", hint),
        (["*"], "*", hint),
        (["users:write"], "users:write", {}),
    ):
        answer = await client.post(
            "/v1/keys", headers=limited, json={"expiresInDays": 5, "scopes": scopes}
        )
        assert (answer.status_code, answer.json()) == (
            403,
            forbidden(f"Insufficient scope: requires {missing}") | more,
        )
    assert "Name the scopes the new key needs" in DEFAULT_KEY_HINT.message
    ok = await client.post(
        "/v1/keys", headers=limited, json={"expiresInDays": 5, "scopes": ["users:read"]}
    )
    assert ok.status_code == 201
    patched = await client.patch(
        f"/v1/keys/{ok.json()['id']}", headers=limited, json={"scopes": ["keys:manage", "x:y"]}
    )
    assert (patched.status_code, patched.json()) == (
        403,
        forbidden("Insufficient scope: requires x:y"),
    )
    # The tenant's own key has `*`, which this manager lacks: it may not rotate it.
    rotated = await client.post(f"/v1/keys/{tenant.key_id}/rotate", headers=limited)
    assert (rotated.status_code, rotated.json()) == (
        403,
        forbidden("Insufficient scope: requires *"),
    )


async def test_another_companys_key_is_not_found(
    client: httpx.AsyncClient, other_tenant: Tenant, manager: dict[str, str]
) -> None:
    not_found = {"statusCode": 404, "message": "API key not found", "error": "Not Found"}
    for method, path in (
        ("GET", ""),
        ("PATCH", ""),
        ("POST", "/deactivate"),
        ("POST", "/activate"),
        ("POST", "/revoke"),
        ("POST", "/rotate"),
    ):
        answer = await client.request(
            method,
            f"/v1/keys/{other_tenant.key_id}{path}",
            headers=manager,
            json={"name": "x"} if method == "PATCH" else None,
        )
        assert (answer.status_code, answer.json()) == (404, not_found), (method, path)


async def test_update_changes_only_what_is_given(
    client: httpx.AsyncClient, tenant: Tenant, manager: dict[str, str]
) -> None:
    path = f"/v1/keys/{tenant.key_id}"
    answer = await client.patch(path, headers=manager, json={"name": "Renamed", "rateLimit": 9})
    assert answer.status_code == 200
    assert (answer.json()["name"], answer.json()["rateLimit"], answer.json()["scopes"]) == (
        "Renamed",
        9,
        ["*"],
    )
    answer = await client.patch(path, headers=manager, json={"rateLimit": None})
    assert (answer.json()["name"], answer.json()["rateLimit"]) == ("Renamed", None)
    bad = await client.patch(path, headers=manager, json={"allowedIps": ["10.0.0.1/8"]})
    assert bad.status_code == 400
    assert bad.json()["statusCode"] == 400 and bad.json()["errors"][0]["field"] == "allowedIps"
    empty = await client.patch(path, headers=manager, json={})
    assert empty.status_code == 400


async def test_state_changes_and_their_conflicts(
    client: httpx.AsyncClient, tenant: Tenant, manager: dict[str, str]
) -> None:
    path = f"/v1/keys/{tenant.key_id}"
    answer = await client.post(f"{path}/deactivate", headers=manager)
    assert (answer.status_code, answer.json()["status"]) == (200, "deactivated")
    again = await client.post(f"{path}/deactivate", headers=manager)
    assert (again.status_code, again.json()) == (
        409,
        {"statusCode": 409, "message": "API key is already deactivated", "error": "Conflict"},
    )
    assert (await client.post(f"{path}/activate", headers=manager)).json()["status"] == "active"
    assert (await client.post(f"{path}/revoke", headers=manager)).json()["status"] == "revoked"
    rotate = await client.post(f"{path}/rotate", headers=manager, json={})
    assert (rotate.status_code, rotate.json()["message"]) == (
        409,
        "API key is revoked and can never be used again",
    )


async def test_rotate_gives_a_new_key_and_the_old_one_a_grace(
    client: httpx.AsyncClient, tenant: Tenant, manager: dict[str, str], clock: FixedClock
) -> None:
    answer = await client.post(
        f"/v1/keys/{tenant.key_id}/rotate",
        headers=manager,
        json={"gracePeriodSeconds": 60, "expiresInDays": 3},
    )
    assert answer.status_code == 201
    new = answer.json()
    assert set(new) == KEY_FIELDS | {"key"}
    assert (new["name"], new["expiresAt"]) == ("Test key", iso_utc(clock.now() + timedelta(days=3)))
    old = (await client.get(f"/v1/keys/{tenant.key_id}", headers=manager)).json()
    assert old["expiresAt"] == iso_utc(clock.now() + timedelta(seconds=60))
    assert (await client.get("/v4/user/me", headers=tenant.auth())).status_code == 200
    clock.advance(timedelta(seconds=60))
    expired = await client.get("/v4/user/me", headers=tenant.auth())
    assert expired.json()["message"] == "API key has expired"
    again = await client.post(f"/v1/keys/{tenant.key_id}/rotate", headers=manager)
    assert (again.status_code, again.json()["message"]) == (409, "API key has expired")
    bad = await client.post(
        f"/v1/keys/{new['id']}/rotate", headers=manager, json={"gracePeriodSeconds": 604801}
    )
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "gracePeriodSeconds"


async def test_a_key_rotates_itself_without_keys_manage(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    headers = {**tenant.auth(tenant.member)}  # the user header is ignored here
    answer = await client.post("/v1/keys/self/rotate", headers=headers)
    assert answer.status_code == 201
    new_key = answer.json()["key"]
    old = await client.get("/v4/user/me", headers=tenant.auth())
    assert (old.status_code, old.json()["message"]) == (401, "API key has expired")
    assert (await client.get("/v4/user/me", headers=bearer(new_key))).status_code == 200


async def test_list_pages_with_a_cursor_and_filters_by_status(
    container: Container,
    client: httpx.AsyncClient,
    tenant: Tenant,
    manager: dict[str, str],
    clock: FixedClock,
) -> None:
    made = []
    for n in range(5):
        clock.advance(timedelta(seconds=1))
        issued = await container.keys.issue_key(
            tenant.company_id, name=f"k{n}", days=5, actor=Actor.cli()
        )
        made.append(issued.record.id)
    await container.keys.revoke_key(tenant.company_id, made[0], Actor.cli())
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/v1/keys", headers=manager, params=params)).json()
        seen += [k["id"] for k in page["keys"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert len(seen) == 7 and len(set(seen)) == 7  # 5 + the tenant's + the manager's
    assert seen[:5] == list(reversed(made))
    revoked = (await client.get("/v1/keys?status=revoked", headers=manager)).json()
    assert ([k["id"] for k in revoked["keys"]], revoked["nextCursor"]) == ([made[0]], None)
    for query, field in (
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("status=gone", "status"),
        ("cursor=%21%21", "cursor"),
        ("colour=red", "colour"),
    ):
        bad = await client.get(f"/v1/keys?{query}", headers=manager)
        assert bad.status_code == 400, query
        assert bad.json()["errors"][0]["field"] == field, query


async def test_list_refuses_a_query_value_without_a_name_as_every_route_does(
    client: httpx.AsyncClient, manager: dict[str, str]
) -> None:
    answer = await client.get("/v1/keys?limit=1&=x", headers=manager)
    assert (answer.status_code, answer.json()) == validation_failed(
        "query", "a parameter needs a name"
    )


async def test_validation_errors_have_the_400_shape(
    client: httpx.AsyncClient, manager: dict[str, str]
) -> None:
    for body, field in (
        ({"expiresInDays": 0}, "expiresInDays"),
        ({"expiresInDays": 91}, "expiresInDays"),
        ({}, "expiresInDays"),
        ({"expiresInDays": 5, "rateLimit": 0}, "rateLimit"),
        ({"expiresInDays": 5, "allowedIps": ["10.0.0.1/8"]}, "allowedIps"),
        ({"expiresInDays": 5, "bogus": 1}, "bogus"),
    ):
        answer = await client.post("/v1/keys", headers=manager, json=body)
        assert answer.status_code == 400, body
        assert answer.json()["statusCode"] == 400
        assert answer.json()["message"] == "Validation failed"
        assert answer.json()["errors"][0]["field"] == field, (body, answer.json())


async def test_without_a_key_the_answer_is_401(client: httpx.AsyncClient) -> None:
    answer = await client.get("/v1/keys")
    assert answer.status_code == 401


async def test_a_narrow_manager_cannot_widen_a_broader_key(
    container: Container, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    """Issue 30, item 7: a key holding only keys:manage may not re-activate, change or rotate
    a `*` key — 403 before the 409 its state would give — but may take rights away."""
    narrow = bearer(await manager_key(container, tenant, "keys:manage"))
    path = f"/v1/keys/{tenant.key_id}"
    await container.keys.deactivate_key(tenant.company_id, tenant.key_id, Actor.cli())
    refusal = (403, forbidden("Insufficient scope: requires *"))
    for method, suffix, body in (
        ("POST", "/activate", None),
        ("PATCH", "", {"allowedIps": None}),
        ("PATCH", "", {"rateLimit": 1000000}),
        ("PATCH", "", {"name": "harmless"}),
        ("POST", "/rotate", {}),
    ):
        answer = await client.request(method, f"{path}{suffix}", headers=narrow, json=body)
        assert (answer.status_code, answer.json()) == refusal, (method, suffix, body)
    # Deactivating again is a conflict the caller may learn of: taking rights away is allowed.
    again = await client.post(f"{path}/deactivate", headers=narrow)
    assert (again.status_code, again.json()["message"]) == (409, "API key is already deactivated")
    # The escalation check comes before the state conflict: an active `*` key, activated again.
    await container.keys.activate_key(tenant.company_id, tenant.key_id, Actor.cli())
    active = await client.post(f"{path}/activate", headers=narrow)
    assert (active.status_code, active.json()) == refusal
    revoked = await client.post(f"{path}/revoke", headers=narrow)
    assert (revoked.status_code, revoked.json()["status"]) == (200, "revoked")
    # A revoked key rotated by a narrower caller: still 403 first, not 409.
    rotated = await client.post(f"{path}/rotate", headers=narrow, json={})
    assert (rotated.status_code, rotated.json()) == refusal


async def test_a_manager_holding_every_scope_of_the_key_may_act_on_it(
    container: Container, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    narrow = bearer(await manager_key(container, tenant, "keys:manage", "orders:read"))
    issued = await container.keys.issue_key(
        tenant.company_id, name="r", days=5, actor=Actor.cli(), scopes=["orders:read"]
    )
    path = f"/v1/keys/{issued.record.id}"
    assert (await client.post(f"{path}/deactivate", headers=narrow)).status_code == 200
    assert (await client.post(f"{path}/activate", headers=narrow)).status_code == 200
    patched = await client.patch(path, headers=narrow, json={"rateLimit": 5})
    assert (patched.status_code, patched.json()["rateLimit"]) == (200, 5)
    assert (await client.post(f"{path}/rotate", headers=narrow, json={})).status_code == 201
