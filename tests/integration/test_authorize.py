"""`/v1/authorize` (docs/contract.md §7): the §2 table, the order of checks, scopes, allowlists, the
answer's body and headers, and the refusal headers nginx needs — on SQLite and PostgreSQL."""

from __future__ import annotations

import ipaddress
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import timedelta
from typing import Any

import httpx
import pytest
from litestar import Litestar

from keyport.bootstrap import Container, build_container
from keyport.domain.audit import Actor
from keyport.domain.clock import FixedClock
from keyport.domain.keys import generate_key
from keyport.services.observability.request_record import RequestRecord
from keyport.web.api.schemas import iso_utc
from keyport.web.app import create_app
from keyport.web.gate import ApiGate, steps
from keyport.web.route_admissions import route_admissions
from keyport.web.throttling import Throttle
from tests.conftest import Tenant
from tests.support.api_calls import validation_failed

# The checks' order, scopes, allowlists and headers; the key and user lookups under them
# run on PostgreSQL too in test_api_authentication.py and test_api_scopes.py.
pytestmark = pytest.mark.sqlite_only

USER_HEADER = "x-meetergo-api-user-id"
PHRASES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 429: "Too Many Requests"}


def body(status: int, message: str) -> dict[str, object]:
    return {"statusCode": status, "message": message, "error": PHRASES[status]}


def assert_refused(answer: httpx.Response, status: int, message: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.json() == body(status, message)
    assert answer.headers["x-keyport-refusal-status"] == str(status)
    assert json.loads(answer.headers["x-keyport-refusal-body"]) == answer.json()
    assert "x-keyport-key-id" not in answer.headers
    if status == 401:
        assert answer.headers["www-authenticate"] == "Bearer"


@asynccontextmanager
async def client_from(container: Container, ip: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(container, run_background=False), client=(ip, 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://keyport.test") as http:
        yield http


async def restricted_key(container: Container, tenant: Tenant, **restrictions: Any) -> str:
    issued = await container.keys.issue_key(
        tenant.company_id, name="restricted", days=10, actor=Actor.cli(), **restrictions
    )
    return issued.key


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
async def test_any_method_answers_with_the_owner_when_no_user_is_named(
    client: httpx.AsyncClient, tenant: Tenant, clock: FixedClock, method: str
) -> None:
    answer = await client.request(
        method, "/v1/authorize", headers=tenant.auth(), content=b"ignored body"
    )
    assert answer.status_code == 200
    headers = answer.headers
    assert headers["x-keyport-key-id"] == tenant.key_id
    assert headers["x-keyport-company-id"] == tenant.company_id
    assert headers["x-keyport-user-id"] == tenant.owner.id
    assert headers["x-keyport-user-role"] == "owner"
    assert headers["x-keyport-scopes"] == "*"
    assert headers["x-keyport-credential"] == "api_key"
    assert headers["ratelimit-limit"] == "200"
    assert "x-keyport-refusal-status" not in headers
    if method != "HEAD":
        assert answer.json() == {
            "keyId": tenant.key_id,
            "companyId": tenant.company_id,
            "userId": tenant.owner.id,
            "userRole": "owner",
            "scopes": ["*"],
            "expiresAt": iso_utc(clock.now() + timedelta(days=30)),
            "credential": "api_key",
        }


async def test_the_named_user_is_the_acting_user(client: httpx.AsyncClient, tenant: Tenant) -> None:
    answer = await client.get("/v1/authorize", headers=tenant.auth(tenant.member))
    assert answer.json()["userId"] == tenant.member.id
    assert answer.headers["x-keyport-user-role"] == "member"
    admin = await client.get("/v1/authorize", headers=tenant.auth(tenant.admin))
    assert admin.json()["userRole"] == "admin"


@pytest.mark.parametrize("fast", [True, False], ids=["fast route", "framework twin"])
async def test_prefer_return_minimal_answers_the_same_headers_without_a_body(
    container: Container, tenant: Tenant, fast: bool
) -> None:
    """For proxies that never read a success's body (Caddy): an unread body costs them the
    connection. Refusals keep theirs: the proxy hands it to the client."""
    app = create_app(container, run_background=False)
    assert isinstance(app.app, Litestar)  # the router behind the gate
    throttle = Throttle(container.key_limits, container.failed_auth)
    gate = (
        app
        if fast
        else ApiGate(
            app.app,
            container.authenticator,
            throttle=throttle,
            admission_of=route_admissions(app.app),
        )
    )
    transport = httpx.ASGITransport(app=gate, client=("203.0.113.7", 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://keyport.test") as http:
        full = await http.get("/v1/authorize", headers=tenant.auth())
        minimal = await http.get(
            "/v1/authorize", headers={**tenant.auth(), "Prefer": "return=minimal"}
        )
        refused = await http.get(
            "/v1/authorize", headers={"Authorization": "Bearer nope", "Prefer": "return=minimal"}
        )
    assert (full.status_code, minimal.status_code) == (200, 200)
    assert full.content and minimal.content == b""
    assert minimal.headers["content-length"] == "0"
    assert minimal.headers["preference-applied"] == "return=minimal"
    assert "preference-applied" not in full.headers
    for name in ("x-keyport-key-id", "x-keyport-user-id", "x-keyport-scopes", "ratelimit-limit"):
        assert minimal.headers[name] == full.headers[name]
    assert_refused(refused, 401, "Invalid API key")


async def test_every_row_of_the_error_table(
    client: httpx.AsyncClient, container: Container, tenant: Tenant, other_tenant: Tenant
) -> None:
    assert_refused(await client.get("/v1/authorize"), 401, "Missing authorization header")
    empty = await client.get("/v1/authorize", headers={"Authorization": ""})
    assert_refused(empty, 401, "Missing authorization header")
    for bad in [f"Basic {tenant.key}", "Bearer nope", f"Bearer {generate_key(uuid.uuid4())}"]:
        answer = await client.get("/v1/authorize", headers={"Authorization": bad})
        assert_refused(answer, 401, "Invalid API key")
    named = {**tenant.auth(), USER_HEADER: "not-a-uuid"}
    assert_refused(
        await client.get("/v1/authorize", headers=named),
        400,
        "Invalid user: x-meetergo-api-user-id must be a UUID",
    )
    for stranger in [other_tenant.owner.id, str(uuid.uuid4())]:
        answer = await client.get("/v1/authorize", headers={**tenant.auth(), USER_HEADER: stranger})
        assert_refused(answer, 403, "Invalid user: no such user in this company")
    await container.keys.deactivate_key(tenant.company_id, tenant.key_id, Actor.cli())
    deactivated = await client.get("/v1/authorize", headers=tenant.auth())
    assert_refused(deactivated, 401, "API key is deactivated")
    await container.keys.revoke_key(tenant.company_id, tenant.key_id, Actor.cli())
    assert_refused(await client.get("/v1/authorize", headers=tenant.auth()), 401, "Invalid API key")


async def test_an_expired_key(client: httpx.AsyncClient, tenant: Tenant, clock: FixedClock) -> None:
    clock.advance(timedelta(days=30))
    answer = await client.get("/v1/authorize", headers=tenant.auth())
    assert_refused(answer, 401, "API key has expired")


async def test_scopes_are_all_required_and_the_first_missing_is_named(
    client: httpx.AsyncClient, container: Container, tenant: Tenant
) -> None:
    key = await restricted_key(container, tenant, scopes=["orders:read", "users:read"])
    auth = {"Authorization": f"Bearer {key}"}
    granted = await client.get("/v1/authorize?scope=orders:read&scope=users:read", headers=auth)
    assert granted.status_code == 200
    assert granted.json()["scopes"] == ["orders:read", "users:read"]
    assert granted.headers["x-keyport-scopes"] == "orders:read users:read"
    refused = await client.get(
        "/v1/authorize?scope=orders:read&scope=b:write&scope=a:write", headers=auth
    )
    assert_refused(refused, 403, "Insufficient scope: requires b:write")


async def test_full_access_holds_every_scope_but_keys_manage(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    allowed = await client.get("/v1/authorize?scope=billing:refund", headers=tenant.auth())
    assert allowed.status_code == 200
    refused = await client.get("/v1/authorize?scope=keys:manage", headers=tenant.auth())
    assert_refused(refused, 403, "Insufficient scope: requires keys:manage")


@pytest.mark.parametrize("query", ["scope=", "scope=*", "scope=Orders:read", "scope=a:b%20c:d"])
async def test_a_malformed_scope_parameter_is_a_validation_error(
    client: httpx.AsyncClient, tenant: Tenant, query: str
) -> None:
    answer = await client.get(f"/v1/authorize?{query}", headers=tenant.auth())
    assert (answer.status_code, answer.json()) == validation_failed(
        "scope", "must be a scope of the form name:action"
    )


@pytest.mark.parametrize("query", ["=true", "scope=users:read&=x"])
async def test_a_query_value_without_a_name_is_a_validation_error(
    client: httpx.AsyncClient, tenant: Tenant, query: str
) -> None:
    answer = await client.get(f"/v1/authorize?{query}", headers=tenant.auth())
    assert (answer.status_code, answer.json()) == validation_failed(
        "query", "a parameter needs a name"
    )


async def test_an_unknown_query_parameter_is_a_validation_error(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    answer = await client.get("/v1/authorize?scope=users:read&scopes=x:y", headers=tenant.auth())
    assert (answer.status_code, answer.json()) == validation_failed(
        "scopes", "is not a known parameter"
    )


async def test_the_allowlist_admits_ipv4_and_ipv6_networks_only(
    container: Container, tenant: Tenant
) -> None:
    key = await restricted_key(container, tenant, allowed_ips=["192.0.2.0/24", "2001:db8::/32"])
    auth = {"Authorization": f"Bearer {key}"}
    for inside in ["192.0.2.77", "2001:db8::9"]:
        async with client_from(container, inside) as http:
            assert (await http.get("/v1/authorize", headers=auth)).status_code == 200
    for outside in ["198.51.100.1", "2001:db9::1"]:
        async with client_from(container, outside) as http:
            answer = await http.get("/v1/authorize", headers=auth)
            assert_refused(answer, 403, "API key is not allowed from this IP address")


async def test_forwarded_for_counts_only_from_a_trusted_proxy(
    container: Container, tenant: Tenant
) -> None:
    key = await restricted_key(container, tenant, allowed_ips=["192.0.2.0/24"])
    forged = {"Authorization": f"Bearer {key}", "X-Forwarded-For": "192.0.2.5"}
    async with client_from(container, "10.0.0.2") as untrusted:
        answer = await untrusted.get("/v1/authorize", headers=forged)
        assert_refused(answer, 403, "API key is not allowed from this IP address")
    proxied = replace(container.settings, trusted_proxies=(ipaddress.ip_network("10.0.0.0/8"),))
    behind_proxy = build_container(proxied, clock=container.clock)
    try:
        async with client_from(behind_proxy, "10.0.0.2") as proxy:
            assert (await proxy.get("/v1/authorize", headers=forged)).status_code == 200
    finally:
        await behind_proxy.close()


async def test_order_key_before_allowlist_before_scope_before_rate_limit_before_user(
    container: Container, tenant: Tenant, clock: FixedClock
) -> None:
    key = await restricted_key(
        container, tenant, scopes=["a:read"], allowed_ips=["192.0.2.0/24"], rate_limit=1
    )
    auth = {"Authorization": f"Bearer {key}", USER_HEADER: "not-a-uuid"}
    async with client_from(container, "198.51.100.1") as outside:
        answer = await outside.get("/v1/authorize?scope=b:read", headers=auth)
        assert_refused(answer, 403, "API key is not allowed from this IP address")
    async with client_from(container, "192.0.2.1") as inside:
        answer = await inside.get("/v1/authorize?scope=b:read", headers=auth)
        assert_refused(answer, 403, "Insufficient scope: requires b:read")
        statuses = [
            (await inside.get("/v1/authorize?scope=a:read", headers=auth)).status_code
            for _ in range(3)
        ]
        assert statuses == [400, 400, 429]  # a limit of 1 a minute bursts to 2
        limited = await inside.get("/v1/authorize", headers=auth)
        assert limited.status_code == 429
        assert limited.headers["retry-after"] == "60"
        assert limited.headers["x-keyport-refusal-status"] == "429"
        assert limited.headers["ratelimit-remaining"] == "0"


async def test_failed_authentications_are_throttled_per_client_ip(
    container: Container,
) -> None:
    guess = {"Authorization": f"Bearer {generate_key(uuid.uuid4())}"}
    async with client_from(container, "198.51.100.40") as http:
        statuses = [(await http.get("/v1/authorize", headers=guess)).status_code for _ in range(61)]
    assert statuses == [401] * 60 + [429]


class Recorder:
    def __init__(self) -> None:
        self.records: list[RequestRecord] = []

    def observe(self, record: RequestRecord) -> None:
        self.records.append(record)

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass


async def test_the_log_names_the_original_request_only_from_a_trusted_proxy(
    container: Container, tenant: Tenant
) -> None:
    original = {
        **tenant.auth(),
        "X-Forwarded-Method": "DELETE",
        "X-Original-URI": "/orders/7?token=secret-ish",
    }
    proxied = replace(container.settings, trusted_proxies=(ipaddress.ip_network("10.0.0.0/8"),))
    behind_proxy = build_container(proxied, clock=container.clock)
    recorder = Recorder()
    behind_proxy.observability.request_log = recorder  # type: ignore[assignment]
    try:
        async with client_from(behind_proxy, "10.0.0.2") as proxy:
            await proxy.get("/v1/authorize", headers=original)
            await proxy.get("/v1/authorize", headers={**original, "X-Forwarded-Uri": "/a/b?c"})
        async with client_from(behind_proxy, "198.51.100.2") as stranger:
            await stranger.get("/v1/authorize", headers=original)
    finally:
        await behind_proxy.close()
    seen = [(r.method, r.path, r.route, r.key_id, r.status) for r in recorder.records]
    assert seen == [
        ("DELETE", "/orders/7", "/v1/authorize", tenant.key_id, 200),
        ("DELETE", "/a/b", "/v1/authorize", tenant.key_id, 200),
        ("GET", "/v1/authorize", "/v1/authorize", tenant.key_id, 200),
    ]


async def test_metrics_count_scope_and_allowlist_refusals(
    client: httpx.AsyncClient, container: Container, tenant: Tenant
) -> None:
    await client.get("/v1/authorize?scope=keys:manage", headers=tenant.auth())
    key = await restricted_key(container, tenant, allowed_ips=["192.0.2.0/24"])
    await client.get("/v1/authorize", headers={"Authorization": f"Bearer {key}"})
    metrics = (await client.get("/metrics")).text
    assert 'outcome="insufficient_scope"} 1' in metrics
    assert 'outcome="ip_not_allowed"} 1' in metrics


async def test_envoy_style_suffixed_paths_authorize_and_ignore_the_clients_query(
    client: httpx.AsyncClient, container: Container, tenant: Tenant
) -> None:
    key = await restricted_key(container, tenant, scopes=["orders:read"])
    auth = {"Authorization": f"Bearer {key}"}
    answer = await client.get("/v1/authorize/orders/7?scope=keys:manage", headers=auth)
    assert answer.status_code == 200
    assert answer.headers["x-keyport-scopes"] == "orders:read"
    assert_refused(await client.post("/v1/authorize/orders/7"), 401, "Missing authorization header")
    assert (await client.get("/v1/authorizex", headers=auth)).status_code == 404


async def test_an_untrusted_asker_naming_an_allowed_client_address_is_refused_and_told(
    container: Container,
    tenant: Tenant,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The asking app sits inside the allowlist itself, but says its client is elsewhere:
    without trust in the app, the allowlist would have been checked against the app's own
    address (docs/contract.md §7; keyport-client's middleware asks this way)."""
    monkeypatch.setattr(steps, "_last_warning", [float("-inf")])  # told once a minute
    key = await restricted_key(container, tenant, allowed_ips=["192.0.2.0/24"])
    auth = {"Authorization": f"Bearer {key}"}
    async with client_from(container, "192.0.2.10") as app_inside_the_allowlist:
        plain = await app_inside_the_allowlist.get("/v1/authorize", headers=auth)
        with caplog.at_level("WARNING", logger="keyport.web.gate.steps"):
            naming = await app_inside_the_allowlist.get(
                "/v1/authorize", headers={**auth, "X-Forwarded-For": "192.0.2.99"}
            )
    assert plain.status_code == 200
    assert_refused(naming, 403, "API key is not allowed from this IP address")
    assert any("KEYPORT_TRUSTED_PROXIES" in r.getMessage() for r in caplog.records)


async def test_a_key_without_an_allowlist_is_not_refused_for_a_forwarded_address(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    answer = await client.get(
        "/v1/authorize", headers={**tenant.auth(), "X-Forwarded-For": "198.51.100.7"}
    )
    assert answer.status_code == 200


@pytest.mark.parametrize(
    "name", ["X-Keyport-Extra", "x-keyport-key-id", "X_Keyport_User_Id", "x-keyport_scopes"]
)
async def test_a_client_header_named_like_keyports_answers_is_refused_at_the_gateway(
    client: httpx.AsyncClient, tenant: Tenant, name: str
) -> None:
    """No proxy then passes it on to its upstream, even one that cannot delete headers by
    prefix (stock nginx)."""
    answer = await client.get("/v1/authorize", headers={**tenant.auth(), name: "spoofed"})
    assert_refused(
        answer, 400, "Headers named X-Keyport-* are Keyport's own: the client may not send them"
    )


async def test_other_routes_ignore_a_header_named_like_keyports(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    answer = await client.get("/v4/user/me", headers={**tenant.auth(), "X-Keyport-Extra": "x"})
    assert answer.status_code == 200
