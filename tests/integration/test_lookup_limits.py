"""Issue 9, item 9: user creations and slug changes by a key count against a per-key limit of
their own, so that the 409 for an email or slug taken in another company cannot be asked
about at scale (services/access/lookup_limits.py); issue 30, item 11: so do invitations from
the dashboard, per user. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from keyport.bootstrap import Container, build_container
from keyport.web.admin.team_pages import TOO_MANY_INVITATIONS
from keyport.web.app import create_app
from tests.conftest import Tenant
from tests.support.admin import dashboard, sign_in, text_of
from tests.support.team import post_form

LIMIT = 3
INVITE = "/admin/team/invite"


@pytest.fixture
async def limited(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    built = build_container(
        replace(container.settings, user_write_limit=LIMIT), clock=container.clock
    )
    transport = httpx.ASGITransport(app=create_app(built, run_background=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://keyport.test") as http:
        yield http
    await built.close()


def new_user(email: str) -> dict[str, str]:
    return {"email": email, "givenName": "New", "familyName": "User", "timezone": "UTC"}


async def test_probing_emails_of_other_companies_is_bounded_per_key(
    limited: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    probes = [other_tenant.owner.email, "fresh-1@acme.test", other_tenant.admin.email]
    answers = [
        await limited.post("/v4/user", json=new_user(e), headers=tenant.auth()) for e in probes
    ]
    assert [a.status_code for a in answers] == [409, 201, 409]

    refused = await limited.post(
        "/v4/user", json=new_user(other_tenant.member.email), headers=tenant.auth()
    )
    assert refused.status_code == 429
    assert refused.json() == {
        "statusCode": 429,
        "message": "Too Many Requests",
        "error": "Too Many Requests",
    }
    assert refused.headers["retry-after"] == "1200"  # 3 an hour: one every 20 minutes

    # Slug changes draw on the same budget; reads and name changes do not.
    owner_as_self = tenant.auth(tenant.owner)
    slug = await limited.patch(
        f"/v4/user/{tenant.owner.id}", json={"slug": "probe-slug"}, headers=owner_as_self
    )
    name = await limited.patch(
        f"/v4/user/{tenant.owner.id}", json={"givenName": "Olga"}, headers=owner_as_self
    )
    read = await limited.get("/v4/user/me", headers=tenant.auth())
    assert (slug.status_code, name.status_code, read.status_code) == (429, 200, 200)

    # Another key has a budget of its own.
    other = await limited.post(
        "/v4/user", json=new_user("fresh-2@globex.test"), headers=other_tenant.auth()
    )
    assert other.status_code == 201


async def test_an_invalid_body_is_refused_before_it_costs_anything(
    limited: httpx.AsyncClient, tenant: Tenant
) -> None:
    for _ in range(LIMIT + 2):
        answer = await limited.post("/v4/user", json={"email": 5}, headers=tenant.auth())
        assert answer.status_code == 400
    created = await limited.post("/v4/user", json=new_user("ok@acme.test"), headers=tenant.auth())
    assert created.status_code == 201


async def test_the_limit_can_be_turned_off(container: Container, tenant: Tenant) -> None:
    built = build_container(replace(container.settings, user_write_limit=0), clock=container.clock)
    transport = httpx.ASGITransport(app=create_app(built, run_background=False))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://keyport.test") as http:
            for n in range(LIMIT + 2):
                answer = await http.post(
                    "/v4/user", json=new_user(f"many-{n}@acme.test"), headers=tenant.auth()
                )
                assert answer.status_code == 201
    finally:
        await built.close()


async def test_the_dashboard_invite_form_draws_on_a_budget_per_user(
    container: Container, tenant: Tenant, other_tenant: Tenant
) -> None:
    """Issue 30, item 11: inviting an address of another company answers 409 (emails are
    global), so invitations count: 3 an hour here, then the team page with 429."""
    built = build_container(
        replace(container.settings, user_write_limit=LIMIT), clock=container.clock
    )
    try:
        async with dashboard(built) as owner, dashboard(built) as admin:
            owner_csrf = await sign_in(owner, tenant.owner.email, "owner-password-1")
            probes = [other_tenant.owner.email, "fresh-1@acme.test", other_tenant.admin.email]
            statuses = [
                (await post_form(owner, INVITE, owner_csrf, email=e, role="member")).status_code
                for e in probes
            ]
            assert statuses == [409, 201, 409]
            # A form refused as invalid costs nothing.
            invalid = await post_form(owner, INVITE, owner_csrf, email="not-an-email", role="x")
            assert invalid.status_code == 400

            refused = await post_form(
                owner, INVITE, owner_csrf, email=other_tenant.member.email, role="member"
            )
            assert refused.status_code == 429
            assert refused.headers["retry-after"] == "1200"
            assert TOO_MANY_INVITATIONS in text_of(refused.text)
            assert "Invite" in text_of(refused.text)  # the team page, its form and all

            # Another user of the company has a budget of their own.
            admin_csrf = await sign_in(admin, tenant.admin.email, "admin-password-1")
            other = await post_form(
                admin, INVITE, admin_csrf, email="fresh-2@acme.test", role="member"
            )
            assert other.status_code == 201
    finally:
        await built.close()
