"""Invitation links: shown once, stored as digests, single use, 72 hours, 404/410 pages."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
from sqlalchemy import select

from keyport.bootstrap import Container
from keyport.db.tables import invitations, users
from keyport.domain.audit import Actor
from keyport.domain.clock import FixedClock
from keyport.domain.usage import without_keys
from keyport.domain.users import Role
from keyport.services.accounts.invitations import Invitee
from tests.conftest import Tenant
from tests.support.admin import ORIGIN, dashboard, hidden, post_login, sign_in, text_of
from tests.support.team import csrf_of, invite_link, post_form

USED = "This invitation has already been used. Sign in, or ask for a new invitation."
EXPIRED = "This invitation has expired. Ask whoever invited you for a new one."
UNKNOWN = "There is no invitation at this address. Check that the whole link was copied."


async def invite_through_the_page(
    container: Container, tenant: Tenant, email: str = "new@acme.test", role: str = "member"
) -> tuple[str, str]:
    """(the link, the page it was shown on), invited by the owner."""
    async with dashboard(container) as http:
        await sign_in(http, tenant.owner.email, "owner-password-1")
        shown = await post_form(
            http,
            "/admin/team/invite",
            await csrf_of(http),
            email=email,
            role=role,
            given_name="Nina",
            family_name="New",
        )
        assert shown.status_code == 201, shown.text
        return invite_link(shown.text), shown.text


async def accept(
    container: Container, link: str, password: str = "new-password-12"
) -> tuple[int, str, str]:
    """Accepts in a fresh browser: (status, location, the account page after)."""
    path = link.removeprefix("http://localhost:8000")
    async with dashboard(container) as http:
        form = await http.get(path)
        answer = await http.post(
            path,
            data={
                "csrf_token": hidden(form.text, "csrf_token"),
                "given_name": "Nina",
                "family_name": "Newcomer",
                "password": password,
                "confirm_password": password,
            },
        )
        after = await http.get("/admin/account")
    return answer.status_code, answer.headers.get("location", ""), text_of(after.text)


async def test_an_invitation_is_shown_once_and_stored_only_as_a_digest(
    container: Container, tenant: Tenant
) -> None:
    link, page = await invite_through_the_page(container, tenant)
    token = link.rsplit("/", 1)[1]
    async with container.engine.connect() as connection:
        stored = (await connection.execute(select(invitations))).all()
        invited = (
            await connection.execute(select(users).where(users.c.email == "new@acme.test"))
        ).one()
    async with dashboard(container) as http:
        await sign_in(http, tenant.owner.email, "owner-password-1")
        team = await http.get("/admin/team")
    async with dashboard(container) as http:
        signing_in = await post_login(http, "new@acme.test", "")

    assert link.startswith("http://localhost:8000/admin/invite/")  # KEYPORT_PUBLIC_URL
    assert "It will not be shown again" in text_of(page)
    assert len(stored) == 1 and token not in str(stored[0]) and stored[0].used_at is None
    assert stored[0].expires_at - stored[0].created_at == timedelta(hours=72)
    assert invited.password_hash is None and invited.invited_at is not None
    assert "new@acme.test" in text_of(team.text) and "Invited" in text_of(team.text)
    assert token not in team.text
    assert signing_in.status_code == 400


async def test_accepting_sets_the_password_and_signs_in(
    container: Container, tenant: Tenant
) -> None:
    link, _ = await invite_through_the_page(container, tenant)
    status, location, account = await accept(container, link)
    async with dashboard(container) as http:
        signed_in = await post_login(http, "new@acme.test", "new-password-12")

    assert (status, location) == (303, "/admin/account?notice=welcome")
    assert "Nina Newcomer" in account and "Member of Acme" in account
    assert signed_in.status_code == 303


async def test_a_used_link_answers_410_and_an_unknown_one_404_never_a_form(
    container: Container, tenant: Tenant
) -> None:
    link, _ = await invite_through_the_page(container, tenant)
    await accept(container, link)
    path = link.removeprefix("http://localhost:8000")
    async with dashboard(container) as http:
        used = await http.get(path)
        used_post = await http.post(path, data={"password": "x" * 12})
        unknown = await http.get("/admin/invite/" + "A" * 43)

    assert used.status_code == 410
    assert USED in text_of(used.text) and "<form" not in used.text
    assert used_post.status_code == 403  # no login token: refused before anything else
    assert unknown.status_code == 404
    assert UNKNOWN in text_of(unknown.text) and "<form" not in unknown.text


async def test_a_link_expires_after_72_hours(
    container: Container, tenant: Tenant, clock: FixedClock
) -> None:
    link, _ = await invite_through_the_page(container, tenant)
    path = link.removeprefix("http://localhost:8000")
    clock.advance(timedelta(hours=71, minutes=59))
    async with dashboard(container) as http:
        still = await http.get(path)
        clock.advance(timedelta(minutes=1))
        expired = await http.get(path)

    assert still.status_code == 200
    assert expired.status_code == 410
    assert EXPIRED in text_of(expired.text) and "<form" not in expired.text


async def test_accepting_twice_at_once_lets_only_one_in(
    container: Container, tenant: Tenant
) -> None:
    link, _ = await invite_through_the_page(container, tenant)
    path = link.removeprefix("http://localhost:8000")
    async with dashboard(container) as first, dashboard(container) as second:
        forms = [await browser.get(path) for browser in (first, second)]

        async def send(browser: httpx.AsyncClient, form: httpx.Response, password: str) -> int:
            answer = await browser.post(
                path,
                data={
                    "csrf_token": hidden(form.text, "csrf_token"),
                    "given_name": "Nina",
                    "family_name": "New",
                    "password": password,
                    "confirm_password": password,
                },
            )
            return answer.status_code

        statuses = await asyncio.gather(
            send(first, forms[0], "new-password-12"), send(second, forms[1], "other-password-1")
        )

    assert sorted(statuses) == [303, 410]
    winner = "new-password-12" if statuses[0] == 303 else "other-password-1"
    async with dashboard(container) as http:
        assert (await post_login(http, "new@acme.test", winner)).status_code == 303


async def test_accepting_without_the_form_token_is_refused(
    container: Container, tenant: Tenant
) -> None:
    link, _ = await invite_through_the_page(container, tenant)
    path = link.removeprefix("http://localhost:8000")
    async with dashboard(container) as http:
        await http.get(path)
        answer = await http.post(
            path,
            data={"password": "new-password-12", "confirm_password": "new-password-12"},
        )

    assert answer.status_code == 403
    assert "did not come from this dashboard" in text_of(answer.text)


async def test_an_admin_invites_members_but_not_admins(
    container: Container, tenant: Tenant
) -> None:
    async with dashboard(container) as http:
        await sign_in(http, tenant.admin.email, "admin-password-1")
        csrf = await csrf_of(http)
        admin = await post_form(
            http, "/admin/team/invite", csrf, email="a2@acme.test", role="admin"
        )
        owner = await post_form(
            http, "/admin/team/invite", csrf, email="o2@acme.test", role="owner"
        )
        member = await post_form(
            http, "/admin/team/invite", csrf, email="m2@acme.test", role="member"
        )
        taken = await post_form(
            http, "/admin/team/invite", csrf, email=tenant.owner.email, role="member"
        )

    assert admin.status_code == 403
    assert "Only the owner can make or unmake admins" in text_of(admin.text)
    assert owner.status_code == 400 and "Role must be admin or member." in text_of(owner.text)
    assert member.status_code == 201
    assert taken.status_code == 409


async def test_the_operator_invites_from_the_cli_use_case(
    container: Container, tenant: Tenant
) -> None:
    issued = await container.invitations.invite_to(
        tenant.company_id, Invitee("ops@acme.test", Role.ADMIN), Actor.cli()
    )
    status, _, account = await accept(container, issued.url)

    assert issued.user.role is Role.ADMIN and issued.user.invited
    assert status == 303 and "Admin of Acme" in account


async def test_the_link_never_reaches_the_request_log() -> None:
    assert without_keys("/admin/invite/abcDEF_123-xyz", 256) == "/admin/invite/[redacted]"
    assert ORIGIN not in without_keys("/admin/invite/abc?x=1", 256)


async def test_a_password_set_by_the_operator_completes_the_invitation(
    container: Container, tenant: Tenant
) -> None:
    link, _ = await invite_through_the_page(container, tenant)
    await container.users.set_password("new@acme.test", "operator-set-1", Actor.cli())
    async with dashboard(container) as http:
        gone = await http.get(link.removeprefix("http://localhost:8000"))
        signed_in = await post_login(http, "new@acme.test", "operator-set-1")

    assert gone.status_code == 410 and "<form" not in gone.text
    assert signed_in.status_code == 303
