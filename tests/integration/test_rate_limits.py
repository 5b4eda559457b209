"""Rate limits on the v4 API: each key's token bucket (100 a minute, bursts to 200), the
headers that report it, a key's own limit, and failed authentications limited per client IP.
The injected clock decides when buckets refill. The buckets live in the process (Redis's in
test_rate_limits_redis.py): a key's own limit, stored with the key, runs on SQLite and
PostgreSQL, the rest on SQLite (`sqlite_only`).
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import timedelta

import httpx
import pytest

from keyport.bootstrap import Container, build_container
from keyport.db.uow import SqlUnitOfWorkFactory
from keyport.domain.audit import Actor
from keyport.domain.clock import FixedClock
from keyport.domain.keys import generate_key
from keyport.services.ports import AuditFilter
from keyport.web.app import create_app
from tests.conftest import Tenant
from tests.support.admin import dashboard, post_login

TOO_MANY = {"statusCode": 429, "message": "Too Many Requests", "error": "Too Many Requests"}


@asynccontextmanager
async def client_from(container: Container, ip: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(container, run_background=False), client=(ip, 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://keyport.test") as http:
        yield http


def limits(answer: httpx.Response) -> tuple[str, str, str]:
    headers = answer.headers
    return headers["ratelimit-limit"], headers["ratelimit-remaining"], headers["ratelimit-reset"]


async def spend(client: httpx.AsyncClient, headers: dict[str, str], count: int) -> list[int]:
    return [(await client.get("/v4/user/me", headers=headers)).status_code for _ in range(count)]


def a_stranger_key() -> str:
    return generate_key(uuid.uuid4())


@pytest.mark.sqlite_only
async def test_a_key_bursts_to_200_then_gets_429_with_the_documented_body_and_headers(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    assert await spend(client, tenant.auth(), 200) == [200] * 200
    refused = await client.get("/v4/user/me", headers=tenant.auth())
    assert refused.status_code == 429
    assert refused.json() == TOO_MANY
    assert refused.headers["retry-after"] == "1"  # one token every 0.6 s
    assert limits(refused) == ("200", "0", "120")  # empty: 120 s until full again
    assert refused.headers["content-type"] == "application/json"
    assert len(refused.headers["x-request-id"]) == 24


@pytest.mark.sqlite_only
async def test_every_authenticated_answer_says_where_the_key_stands(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    first = await client.get("/v4/user/me", headers=tenant.auth())
    assert (first.status_code, limits(first)) == (200, ("200", "199", "1"))
    no_user = await client.get("/v4/user", headers=tenant.auth())
    assert (no_user.status_code, limits(no_user)) == (400, ("200", "198", "2"))
    unknown_route = await client.get("/v4/nothing", headers=tenant.auth())
    assert (unknown_route.status_code, limits(unknown_route)) == (404, ("200", "197", "2"))
    refused_key = await client.get("/v4/user/me", headers={"Authorization": "Bearer nope"})
    assert refused_key.status_code == 401
    assert "ratelimit-limit" not in refused_key.headers
    assert "ratelimit-limit" not in (await client.get("/healthz")).headers


@pytest.mark.sqlite_only
async def test_an_empty_bucket_refills_at_100_a_minute(
    client: httpx.AsyncClient, tenant: Tenant, clock: FixedClock
) -> None:
    await spend(client, tenant.auth(), 200)
    clock.advance(timedelta(seconds=0.5))
    assert await spend(client, tenant.auth(), 1) == [429]
    clock.advance(timedelta(seconds=0.1))  # 0.6 s: one token
    assert await spend(client, tenant.auth(), 2) == [200, 429]
    clock.advance(timedelta(seconds=60))
    assert await spend(client, tenant.auth(), 101) == [200] * 100 + [429]
    clock.advance(timedelta(hours=1))  # never more than the burst
    assert await spend(client, tenant.auth(), 201) == [200] * 200 + [429]


@pytest.mark.sqlite_only
async def test_each_key_has_its_own_bucket(
    client: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    other = await container.keys.issue_key(tenant.company_id, name=None, days=5, actor=Actor.cli())
    await spend(client, tenant.auth(), 201)
    answer = await client.get("/v4/user/me", headers={"Authorization": f"Bearer {other.key}"})
    assert (answer.status_code, limits(answer)) == (200, ("200", "199", "1"))


async def test_a_key_of_its_own_limit_keeps_the_burst_ratio_and_changes_at_once(
    client: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    await spend(client, tenant.auth(), 1)  # the principal is cached with the default
    changed = await container.keys.set_rate_limit(tenant.company_id, tenant.key_id, 10, Actor.cli())
    assert changed.rate_limit == 10
    assert await spend(client, tenant.auth(), 21) == [200] * 20 + [429]
    refused = await client.get("/v4/user/me", headers=tenant.auth())
    assert (limits(refused), refused.headers["retry-after"]) == (("20", "0", "120"), "6")
    await container.keys.set_rate_limit(tenant.company_id, tenant.key_id, None, Actor.cli())
    back = await client.get("/v4/user/me", headers=tenant.auth())
    assert back.headers["ratelimit-limit"] == "200"


async def test_a_key_created_with_a_limit_is_held_to_it(
    client: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    issued = await container.keys.issue_key(
        tenant.company_id, name=None, days=5, actor=Actor.cli(), rate_limit=3
    )
    headers = {"Authorization": f"Bearer {issued.key}"}
    assert await spend(client, headers, 7) == [200] * 6 + [429]


@pytest.mark.sqlite_only
async def test_the_default_limit_is_configurable_and_can_be_switched_off(
    container: Container, tenant: Tenant
) -> None:
    settings = replace(container.settings, rate_limit=6, rate_limit_burst=3)
    small = build_container(settings, clock=container.clock)
    try:
        async with client_from(small, "203.0.113.7") as http:
            assert await spend(http, tenant.auth(), 4) == [200, 200, 200, 429]
    finally:
        await small.close()
    unlimited = build_container(replace(settings, rate_limit=0), clock=container.clock)
    try:
        async with client_from(unlimited, "203.0.113.7") as http:
            answers = [await http.get("/v4/user/me", headers=tenant.auth()) for _ in range(250)]
        assert {a.status_code for a in answers} == {200}
        assert "ratelimit-limit" not in answers[-1].headers
    finally:
        await unlimited.close()


@pytest.mark.sqlite_only
async def test_a_flood_of_guesses_from_one_ip_earns_429_and_spares_other_ips(
    container: Container, tenant: Tenant, clock: FixedClock
) -> None:
    guess = {"Authorization": f"Bearer {a_stranger_key()}"}
    async with client_from(container, "198.51.100.9") as attacker:
        statuses = await spend(attacker, guess, 61)
        assert statuses == [401] * 60 + [429]
        refused = await attacker.get("/v4/user/me", headers=tenant.auth())
        assert (refused.status_code, refused.json()) == (429, TOO_MANY)
        assert refused.headers["retry-after"] == "1"
        assert "ratelimit-limit" not in refused.headers  # the key was never looked at
    async with client_from(container, "203.0.113.7") as neighbour:
        assert await spend(neighbour, tenant.auth(), 1) == [200]
        assert await spend(neighbour, guess, 1) == [401]
    clock.advance(timedelta(seconds=1))  # one failure a second is allowed back
    async with client_from(container, "198.51.100.9") as attacker:
        assert await spend(attacker, guess, 2) == [401, 429]


@pytest.mark.sqlite_only
async def test_expired_and_deactivated_keys_count_as_failures_but_user_errors_do_not(
    container: Container, tenant: Tenant
) -> None:
    await container.keys.deactivate_key(tenant.company_id, tenant.key_id, Actor.cli())
    async with client_from(container, "198.51.100.10") as http:
        assert await spend(http, tenant.auth(), 61) == [401] * 60 + [429]
    await container.keys.activate_key(tenant.company_id, tenant.key_id, Actor.cli())
    bad_user = {**tenant.auth(), "x-meetergo-api-user-id": "not-a-uuid"}
    async with client_from(container, "198.51.100.11") as http:
        assert await spend(http, bad_user, 70) == [400] * 70


@pytest.mark.sqlite_only
async def test_forwarded_for_is_believed_only_from_a_trusted_proxy(
    container: Container, tenant: Tenant
) -> None:
    guess = {"Authorization": f"Bearer {a_stranger_key()}"}
    proxied = replace(container.settings, trusted_proxies=(ipaddress.ip_network("10.0.0.0/8"),))
    behind_proxy = build_container(proxied, clock=container.clock)
    try:
        async with client_from(behind_proxy, "10.0.0.2") as proxy:
            forged = {**guess, "X-Forwarded-For": "192.0.2.1, 198.51.100.20, 10.0.0.3"}
            assert await spend(proxy, forged, 61) == [401] * 60 + [429]
            # Another client behind the same proxy is someone else.
            other = {**tenant.auth(), "X-Forwarded-For": "198.51.100.21"}
            assert await spend(proxy, other, 1) == [200]
    finally:
        await behind_proxy.close()
    async with client_from(container, "10.0.0.2") as untrusted:
        # Not trusted: every forwarded address is ignored, all guesses count against the peer.
        statuses = [
            (
                await untrusted.get(
                    "/v4/user/me", headers={**guess, "X-Forwarded-For": f"198.51.100.{n}"}
                )
            ).status_code
            for n in range(61)
        ]
        assert statuses == [401] * 60 + [429]


@pytest.mark.sqlite_only
async def test_the_dashboard_sees_the_same_client_address_as_the_api(
    container: Container, tenant: Tenant
) -> None:
    proxied = replace(container.settings, trusted_proxies=(ipaddress.ip_network("10.0.0.0/8"),))
    behind_proxy = build_container(proxied, clock=container.clock)
    try:
        async with dashboard(behind_proxy, client_ip="10.0.0.2") as http:
            http.headers["X-Forwarded-For"] = "198.51.100.30"
            answer = await post_login(http, tenant.owner.email, "wrong-password-9")
            assert answer.status_code == 400  # the form again, with an error
    finally:
        await behind_proxy.close()
    async with SqlUnitOfWorkFactory(container.engine)() as uow:
        events, _ = await uow.audit.list(AuditFilter(action="auth.sign_in_failed"), 10, 0)
    assert [e.actor.ip for e in events] == ["198.51.100.30"]
