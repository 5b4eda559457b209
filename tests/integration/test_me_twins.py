"""`GET /v4/user/me` has two implementations: the gate's fast route and the Litestar handler
that documents it. Whatever the request, both must answer alike."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from litestar import Litestar

from keyport.bootstrap import Container
from keyport.web.app import create_app
from keyport.web.gate import ApiGate
from keyport.web.route_admissions import route_admissions
from tests.conftest import Tenant


@pytest.fixture
async def framework_only(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    """The same application with the gate handing nothing to fast routes."""
    fast = create_app(container, run_background=False)
    assert isinstance(fast.app, Litestar)  # the router behind the gate
    slow = ApiGate(
        fast.app,
        container.authenticator,
        admission_of=route_admissions(fast.app),
        clock=container.clock,
        trusted_proxies=container.settings.trusted_proxies,
    )
    transport = httpx.ASGITransport(app=slow, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://keyport.test") as http:
        yield http


def _cases(tenant: Tenant) -> dict[str, dict[str, str]]:
    auth = tenant.auth()
    return {
        "owner": auth,
        "member": tenant.auth(tenant.member),
        "not a uuid": {**auth, "x-meetergo-api-user-id": "nope"},
        "unknown user": {**auth, "x-meetergo-api-user-id": "00000000-0000-4000-8000-000000000000"},
    }


async def test_the_fast_route_and_its_framework_twin_answer_alike(
    client: httpx.AsyncClient, framework_only: httpx.AsyncClient, tenant: Tenant
) -> None:
    for case, headers in _cases(tenant).items():
        fast = await client.get("/v4/user/me", headers=headers)
        slow = await framework_only.get("/v4/user/me", headers=headers)
        assert (fast.status_code, fast.json()) == (slow.status_code, slow.json()), case
        assert fast.headers["content-type"] == slow.headers["content-type"], case
    assert (await client.get("/v4/user/me", headers=tenant.auth())).status_code == 200
