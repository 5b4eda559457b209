"""Personal access tokens on the request path: every row of the token's answer table by its
exact body, at its place in the order of checks, on SQLite and PostgreSQL
(docs/contract.md §11)."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from keyport.bootstrap import Container
from keyport.domain import personal_tokens
from keyport.domain.audit import Actor
from keyport.domain.clock import FixedClock
from keyport.domain.users import Role
from keyport.web.api.schemas import iso_utc
from tests.conftest import Tenant

USER_HEADER = "x-meetergo-api-user-id"


def _bearer(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}


def _refused(status: int, message: str) -> dict[str, object]:
    error = {401: "Unauthorized", 403: "Forbidden"}[status]
    return {"statusCode": status, "message": message, "error": error}


async def _token(c: Container, tenant: Tenant, *, member: bool = True, **options: object) -> str:
    user = tenant.member if member else tenant.owner
    issued = await c.tokens.issue(
        user,
        name=f"t{len(str(options))}",
        days=options.get("days", 30),
        scopes=options.get("scopes"),
        actor=Actor.cli(),
    )
    return issued.token


async def _expect(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    status: int,
    message: str,
    *,
    method: str = "GET",
    path: str = "/v4/user/me",
) -> None:
    answer = await client.request(
        method, path, headers=headers, json={} if method in {"POST", "PATCH"} else None
    )
    assert (answer.status_code, answer.json()) == (status, _refused(status, message))
    if status == 401:
        assert answer.headers["www-authenticate"] == "Bearer"


async def test_a_token_without_user_header_acts_as_its_own_user_everywhere(
    container: Container, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    token = await _token(container, tenant)
    me = await client.get("/v4/user/me", headers=_bearer(token))
    assert (me.status_code, me.json()["id"], me.json()["email"]) == (
        200,
        tenant.member.id,
        tenant.member.email,
    )
    own = await client.get(
        "/v4/user/me", headers=_bearer(token, **{USER_HEADER: tenant.member.id.upper()})
    )
    assert own.json()["id"] == tenant.member.id
    # Where a key needs the header (400), a token needs none; the member's role still applies.
    listed = await client.get("/v4/user", headers=_bearer(token))
    assert (listed.status_code, listed.json()["message"]) == (
        403,
        "Only company owners and admins can do this",
    )
    mine = await client.get(f"/v4/user/{tenant.member.id}", headers=_bearer(token))
    assert mine.status_code == 200  # users may read themselves, as with a key acting as them
    other = await client.get(f"/v4/user/{tenant.owner.id}", headers=_bearer(token))
    assert other.status_code == 403


@pytest.mark.parametrize(
    "spoil",
    [
        lambda t: personal_tokens.generate_token(),  # well formed, unknown
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # bad checksum
        lambda t: t + "x",  # malformed
        lambda t: "rgo-" + "a" * 32,  # malformed checksum
    ],
)
async def test_unknown_malformed_and_bad_checksum_tokens_are_invalid_api_keys(
    container: Container, client: httpx.AsyncClient, tenant: Tenant, spoil: object
) -> None:
    token = await _token(container, tenant)
    await _expect(client, _bearer(spoil(token)), 401, "Invalid API key")  # type: ignore[operator]


async def test_a_revoked_token_is_an_invalid_api_key_at_once(
    container: Container, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    issued = await container.tokens.issue(
        tenant.member, name="R", days=30, scopes=None, actor=Actor.cli()
    )
    assert (await client.get("/v4/user/me", headers=_bearer(issued.token))).status_code == 200
    await container.tokens.revoke(tenant.admin, issued.record.id, Actor.cli())
    await _expect(client, _bearer(issued.token), 401, "Invalid API key")


async def test_an_expired_token_and_expired_before_disabled(
    container: Container, client: httpx.AsyncClient, tenant: Tenant, clock: FixedClock
) -> None:
    token = await _token(container, tenant, days=7)
    clock.advance(timedelta(days=7))
    await _expect(client, _bearer(token), 401, "Personal access token has expired")
    await container.tokens.set_policy(tenant.company_id, Actor.cli(), allow=False)
    await _expect(client, _bearer(token), 401, "Personal access token has expired")


async def test_tokens_turned_off_are_refused_and_work_again_when_turned_on(
    container: Container, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    token = await _token(container, tenant)
    assert (await client.get("/v4/user/me", headers=_bearer(token))).status_code == 200
    await container.tokens.set_policy(tenant.company_id, Actor.cli(), allow=False)
    await _expect(
        client, _bearer(token), 401, "Personal access tokens are disabled for this company"
    )
    await container.tokens.set_policy(tenant.company_id, Actor.cli(), allow=True)
    assert (await client.get("/v4/user/me", headers=_bearer(token))).status_code == 200


async def test_the_tokens_user_removed_is_an_invalid_api_key(
    container: Container, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    token = await _token(container, tenant)
    assert (await client.get("/v4/user/me", headers=_bearer(token))).status_code == 200
    await container.users.delete_user(tenant.owner, tenant.member.id, Actor.cli())
    await _expect(client, _bearer(token), 401, "Invalid API key")


@pytest.mark.parametrize("named", ["other", "not-a-uuid", "unknown"])
async def test_naming_anyone_else_in_the_user_header_is_refused(
    container: Container, client: httpx.AsyncClient, tenant: Tenant, named: str
) -> None:
    token = await _token(container, tenant)
    value = {
        "other": tenant.owner.id,
        "not-a-uuid": "not-a-uuid",
        "unknown": "11111111-2222-4333-8444-555555555555",
    }[named]
    await _expect(
        client,
        _bearer(token, **{USER_HEADER: value}),
        403,
        "Personal access tokens act as their owner: omit x-meetergo-api-user-id",
    )


async def test_user_creation_user_management_and_credentials_are_refused(
    container: Container, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    token = await _token(container, tenant, member=False)  # even the owner's token
    auth = _bearer(token)
    create = "Personal Access Tokens cannot create users — authenticate with a Platform API Key"
    manage = "Personal Access Tokens cannot manage users — authenticate with a Platform API Key"
    await _expect(client, auth, 403, create, method="POST", path="/v4/user")
    for method in ("PATCH", "DELETE"):
        await _expect(client, auth, 403, manage, method=method, path=f"/v4/user/{tenant.member.id}")
    credentials = "Personal Access Tokens cannot manage credentials"
    for method, path in [
        ("GET", "/v1/keys"),
        ("POST", "/v1/keys"),
        ("POST", "/v1/keys/self/rotate"),
        ("GET", "/v1/tokens"),
        ("POST", f"/v1/tokens/{tenant.key_id}/revoke"),
        ("POST", "/v1/leaks"),
    ]:
        await _expect(client, auth, 403, credentials, method=method, path=path)
    await _expect(
        client,
        auth,
        403,
        "Personal access tokens cannot spend credits",
        path="/v1/authorize?cost=2",
    )


async def test_token_refusals_come_before_the_allowlist_and_spend_nothing(
    container: Container, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    token = await _token(container, tenant, scopes=["billing:read"])
    await container.tokens.set_policy(
        tenant.company_id, Actor.cli(), allowed_ips=["198.51.100.0/24"]
    )
    other = _bearer(token, **{USER_HEADER: tenant.owner.id})
    refused = await client.get("/v4/user/me", headers=other)
    assert refused.json()["message"].startswith("Personal access tokens act as their owner")
    assert "ratelimit-remaining" not in refused.headers
    await _expect(client, _bearer(token), 403, "API key is not allowed from this IP address")
    await container.tokens.set_policy(tenant.company_id, Actor.cli(), allowed_ips=[])
    await _expect(client, _bearer(token), 403, "Insufficient scope: requires users:read")


async def test_the_role_applies_at_request_time(
    container: Container, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    token = await _token(container, tenant)
    assert (await client.get("/v4/user", headers=_bearer(token))).status_code == 403
    await container.team.change_role(tenant.owner, tenant.member.id, Role.ADMIN, Actor.cli())
    assert (await client.get("/v4/user", headers=_bearer(token))).status_code == 200
    await container.team.change_role(tenant.owner, tenant.member.id, Role.MEMBER, Actor.cli())
    assert (await client.get("/v4/user", headers=_bearer(token))).status_code == 403


async def test_authorize_names_the_credential_and_the_tokens_user(
    container: Container, client: httpx.AsyncClient, tenant: Tenant, clock: FixedClock
) -> None:
    issued = await container.tokens.issue(
        tenant.member, name="gw", days=30, scopes=["orders:read"], actor=Actor.cli()
    )
    answer = await client.get("/v1/authorize?scope=orders:read", headers=_bearer(issued.token))
    assert answer.status_code == 200
    assert answer.json() == {
        "keyId": issued.record.id,
        "companyId": tenant.company_id,
        "userId": tenant.member.id,
        "userRole": "member",
        "scopes": ["orders:read"],
        "expiresAt": iso_utc(clock.now() + timedelta(days=30)),
        "credential": "personal_access_token",
    }
    assert answer.headers["x-keyport-credential"] == "personal_access_token"
    assert answer.headers["x-keyport-key-id"] == issued.record.id
    endless = await container.tokens.issue(
        tenant.member, name="forever", days=None, scopes=None, actor=Actor.cli()
    )
    forever = await client.get("/v1/authorize", headers=_bearer(endless.token))
    assert forever.json()["expiresAt"] is None
    missing = await client.get("/v1/authorize?scope=billing:read", headers=_bearer(issued.token))
    assert missing.json() == _refused(403, "Insufficient scope: requires billing:read")
