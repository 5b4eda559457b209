"""/admin/tokens over HTTP: every signed-in user (members too) creates, sees once, lists,
regenerates and revokes their own tokens; owners and admins see and revoke the team's; owners
set the policy; a token revoked by someone else leaves its user a notice."""

from __future__ import annotations

import re

import httpx

from keyport.bootstrap import Container
from keyport.domain.audit import Actor
from tests.conftest import Tenant
from tests.support.admin import dashboard, hidden, post_login, sign_in, text_of

TOKEN_IN_TEXT = re.compile(r"rgo-[0-9A-Za-z]{32}")


async def _create(
    http: httpx.AsyncClient, csrf: str, name: str, expiry: str = "30", **extra: str
) -> httpx.Response:
    page = await http.get("/admin/tokens")
    data = {"csrf_token": csrf, "nonce": hidden(page.text, "nonce"), "name": name}
    return await http.post("/admin/tokens", data=data | {"expiry": expiry} | extra)


def _shown(answer: httpx.Response) -> str:
    found = TOKEN_IN_TEXT.search(answer.text)
    assert found is not None, "no token on the page"
    return found.group(0)


async def test_a_member_lands_on_tokens_and_creates_one_shown_once(
    container: Container, tenant: Tenant
) -> None:
    async with dashboard(container) as http:
        landed = await post_login(http, tenant.member.email, "member-password-1")
        assert (landed.status_code, landed.headers["location"]) == (303, "/admin/tokens")
        csrf = hidden((await http.get("/admin/tokens")).text, "csrf_token")
        created = await _create(http, csrf, "Laptop", "7")
        assert created.status_code == 201
        assert created.headers["cache-control"] == "no-store"
        token = _shown(created)
        text = text_of(created.text)
        assert "Copy this token now. It will not be shown again." in text
        assert "curl https://keyport.test/v4/user/me" in text
        assert "x-meetergo-api-user-id" not in created.text.split("Try it")[1].split("</pre>")[0]
        listing = await http.get("/admin/tokens")
        assert TOKEN_IN_TEXT.search(listing.text) is None
        assert token[:8] + "…" in listing.text
        assert "Your team's tokens" not in listing.text
        assert "Token policy" not in listing.text


async def test_refusals_are_said_on_the_form(container: Container, tenant: Tenant) -> None:
    async with dashboard(container) as http:
        csrf = await sign_in(http, tenant.member.email, "member-password-1")
        manage = await _create(http, csrf, "A", scopes="keys:manage")
        assert manage.status_code == 400
        assert "keys:manage cannot be given to a personal access token" in text_of(manage.text)
        await container.tokens.set_policy(tenant.company_id, Actor.cli(), max_days=30)
        longer = await _create(http, csrf, "A", "90")
        assert "at most 30 days: the company's maximum lifetime" in text_of(longer.text)
        never = await _create(http, csrf, "A", "none")
        assert never.status_code == 400
        assert TOKEN_IN_TEXT.search(longer.text + never.text + manage.text) is None


async def test_an_admin_revokes_a_members_token_and_the_member_sees_why(
    container: Container, tenant: Tenant
) -> None:
    issued = await container.tokens.issue(
        tenant.member, name="Laptop", days=30, scopes=None, actor=Actor.cli()
    )
    async with dashboard(container) as http:
        csrf = await sign_in(http, tenant.admin.email, "admin-password-1")
        page = await http.get("/admin/tokens")
        assert "Your team's tokens" in page.text and "Max Member" in text_of(page.text)
        revoked = await http.post(
            f"/admin/tokens/{issued.record.id}/revoke", data={"csrf_token": csrf}
        )
        assert (revoked.status_code, revoked.headers["location"]) == (
            303,
            "/admin/tokens?notice=revoked",
        )
    async with dashboard(container) as http:
        csrf = await sign_in(http, tenant.member.email, "member-password-1")
        words = text_of((await http.get("/admin/tokens")).text)
        assert "One of your tokens was revoked by someone else." in words
        assert "“Laptop”" in words and "revoked by Ada Admin" in words
        await http.post("/admin/tokens/notices/dismiss", data={"csrf_token": csrf})
        assert "revoked by someone else" not in (await http.get("/admin/tokens")).text


async def test_only_the_owner_sets_the_policy(container: Container, tenant: Tenant) -> None:
    async with dashboard(container) as http:
        csrf = await sign_in(http, tenant.admin.email, "admin-password-1")
        refused = await http.post(
            "/admin/tokens/policy", data={"csrf_token": csrf, "max_days": "10"}
        )
        assert refused.status_code == 403
    async with dashboard(container) as http:
        csrf = await sign_in(http, tenant.owner.email, "owner-password-1")
        saved = await http.post(
            "/admin/tokens/policy",
            data={"csrf_token": csrf, "allow": "on", "max_days": "10", "allowed_ips": "10.0.0.0/8"},
        )
        assert saved.headers["location"] == "/admin/tokens?notice=policy"
        policy = await container.tokens.policy(tenant.company_id)
        assert (policy.allow, policy.max_days, policy.allowed_ips) == (True, 10, ("10.0.0.0/8",))
        bad = await http.post(
            "/admin/tokens/policy", data={"csrf_token": csrf, "allowed_ips": "10.0.0.1/8"}
        )
        assert bad.status_code == 400
        off = await http.post("/admin/tokens/policy", data={"csrf_token": csrf})
        assert off.status_code == 303
        assert (await container.tokens.policy(tenant.company_id)).allow is False


async def test_regenerate_shows_a_new_token_once(container: Container, tenant: Tenant) -> None:
    issued = await container.tokens.issue(
        tenant.owner, name="CI", days=30, scopes=None, actor=Actor.cli()
    )
    async with dashboard(container) as http:
        csrf = await sign_in(http, tenant.owner.email, "owner-password-1")
        again = await http.post(
            f"/admin/tokens/{issued.record.id}/regenerate", data={"csrf_token": csrf}
        )
        assert again.status_code == 201 and again.headers["cache-control"] == "no-store"
        assert _shown(again) != issued.token
        # A member cannot regenerate someone else's token.
    async with dashboard(container) as http:
        csrf = await sign_in(http, tenant.member.email, "member-password-1")
        other = await http.post(
            f"/admin/tokens/{issued.record.id}/regenerate", data={"csrf_token": csrf}
        )
        assert other.status_code == 404
