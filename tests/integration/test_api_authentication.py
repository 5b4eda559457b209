"""docs/contract.md §2 error table, row by row, in order, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx

from keyport.bootstrap import Container
from keyport.domain.audit import Actor
from keyport.domain.clock import FixedClock
from tests.conftest import Tenant

USER_HEADER = "x-meetergo-api-user-id"


def body(status: int, message: str) -> dict[str, object]:
    phrases = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden"}
    return {"statusCode": status, "message": message, "error": phrases[status]}


def assert_refused(answer: httpx.Response, status: int, message: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.json() == body(status, message)
    assert len(answer.headers["x-request-id"]) == 24
    if status == 401:
        assert answer.headers["www-authenticate"] == "Bearer"


async def test_missing_authorization_header(client: httpx.AsyncClient) -> None:
    assert_refused(await client.get("/v4/user/me"), 401, "Missing authorization header")


async def test_empty_authorization_header(client: httpx.AsyncClient) -> None:
    answer = await client.get("/v4/user/me", headers={"Authorization": ""})
    assert_refused(answer, 401, "Missing authorization header")


async def test_not_a_bearer_token(client: httpx.AsyncClient, tenant: Tenant) -> None:
    for value in [f"Basic {tenant.key}", tenant.key, "Bearer", "Bearer   "]:
        answer = await client.get("/v4/user/me", headers={"Authorization": value})
        assert_refused(answer, 401, "Invalid API key")


async def test_bad_checksum(client: httpx.AsyncClient, tenant: Tenant) -> None:
    last = "A" if tenant.key[-1] != "A" else "B"
    answer = await client.get(
        "/v4/user/me", headers={"Authorization": f"Bearer {tenant.key[:-1]}{last}"}
    )
    assert_refused(answer, 401, "Invalid API key")


async def test_unknown_well_formed_key(client: httpx.AsyncClient) -> None:
    from keyport.domain.keys import generate_key

    stranger = generate_key(uuid.uuid4())
    answer = await client.get("/v4/user/me", headers={"Authorization": f"Bearer {stranger}"})
    assert_refused(answer, 401, "Invalid API key")


async def test_secret_of_one_key_with_the_id_of_another(
    client: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    from keyport.domain.keys import checksum

    other = await container.keys.issue_key(tenant.company_id, name=None, days=5, actor=Actor.cli())
    body_ = f"ak_live:{other.record.id}:{tenant.key.split(':')[2][:44]}"
    answer = await client.get(
        "/v4/user/me", headers={"Authorization": f"Bearer {body_}{checksum(body_)}"}
    )
    assert_refused(answer, 401, "Invalid API key")


async def test_revoked_key_is_invalid_forever(
    client: httpx.AsyncClient, tenant: Tenant, container: Container, clock: FixedClock
) -> None:
    assert (await client.get("/v4/user/me", headers=tenant.auth())).status_code == 200
    await container.keys.revoke_key(tenant.company_id, tenant.key_id, Actor.cli())
    assert_refused(await client.get("/v4/user/me", headers=tenant.auth()), 401, "Invalid API key")
    clock.advance(timedelta(days=365))
    assert_refused(await client.get("/v4/user/me", headers=tenant.auth()), 401, "Invalid API key")


async def test_expired_key_by_the_injected_clock(
    client: httpx.AsyncClient, tenant: Tenant, clock: FixedClock
) -> None:
    assert (await client.get("/v4/user/me", headers=tenant.auth())).status_code == 200
    clock.advance(timedelta(days=30) - timedelta(seconds=1))
    assert (await client.get("/v4/user/me", headers=tenant.auth())).status_code == 200
    clock.advance(timedelta(seconds=1))  # expires_at <= now
    assert_refused(
        await client.get("/v4/user/me", headers=tenant.auth()), 401, "API key has expired"
    )


async def test_expiry_is_checked_before_deactivation(
    client: httpx.AsyncClient, tenant: Tenant, container: Container, clock: FixedClock
) -> None:
    await container.keys.deactivate_key(tenant.company_id, tenant.key_id, Actor.cli())
    clock.advance(timedelta(days=31))
    assert_refused(
        await client.get("/v4/user/me", headers=tenant.auth()), 401, "API key has expired"
    )


async def test_deactivated_key_until_reactivated(
    client: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    await container.keys.deactivate_key(tenant.company_id, tenant.key_id, Actor.cli())
    assert_refused(
        await client.get("/v4/user/me", headers=tenant.auth()), 401, "API key is deactivated"
    )
    await container.keys.activate_key(tenant.company_id, tenant.key_id, Actor.cli())
    assert (await client.get("/v4/user/me", headers=tenant.auth())).status_code == 200


async def test_key_errors_come_before_user_header_errors(
    client: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    await container.keys.deactivate_key(tenant.company_id, tenant.key_id, Actor.cli())
    answer = await client.get("/v4/user", headers={**tenant.auth(), USER_HEADER: "not-a-uuid"})
    assert_refused(answer, 401, "API key is deactivated")


async def test_missing_user_header_where_a_user_is_needed(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    answer = await client.get("/v4/user", headers=tenant.auth())
    assert_refused(
        answer,
        400,
        "Missing required header 'x-meetergo-api-user-id' for API key authentication",
    )


async def test_user_header_that_is_not_a_uuid(client: httpx.AsyncClient, tenant: Tenant) -> None:
    for value in ["nope", "123", "550e8400-e29b-41d4-a716-4466554400zz"]:
        answer = await client.get("/v4/user/me", headers={**tenant.auth(), USER_HEADER: value})
        assert_refused(answer, 400, "Invalid user: x-meetergo-api-user-id must be a UUID")


async def test_unknown_deleted_and_foreign_users_answer_alike(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    deleted = await client.delete(f"/v4/user/{tenant.member.id}", headers=tenant.auth(tenant.owner))
    assert deleted.status_code == 204
    for user_id in [
        str(uuid.uuid4()),
        other_tenant.owner.id,
        other_tenant.member.id,
        tenant.member.id,
    ]:
        answer = await client.get("/v4/user/me", headers={**tenant.auth(), USER_HEADER: user_id})
        assert_refused(answer, 403, "Invalid user: no such user in this company")


async def test_unknown_v4_path_still_authenticates_first(client: httpx.AsyncClient) -> None:
    assert_refused(await client.get("/v4/nothing-here"), 401, "Missing authorization header")


async def test_every_response_has_a_request_id(client: httpx.AsyncClient) -> None:
    first = await client.get("/healthz")
    second = await client.get("/healthz")
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
