"""Hostile input to the team, invitation, account and code-step forms never answers 500."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from urllib.parse import quote

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyport.bootstrap import Container, build_container
from keyport.config import MAX_INT_SETTING
from keyport.domain.audit import Actor
from keyport.domain.users import Role
from keyport.services.accounts.invitations import Invitee
from tests.conftest import Tenant
from tests.integration.test_dashboard_fuzzing import FUZZ, assert_handled, field_text
from tests.support.admin import dashboard, hidden, sign_in
from tests.support.team import csrf_of, post_form

TEAM_FUZZ = settings(FUZZ, max_examples=25)  # each example hashes a password or two


@pytest.fixture
async def owner(
    container: Container, tenant: Tenant
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    async with dashboard(container) as http:
        await sign_in(http, tenant.owner.email, "owner-password-1")
        yield http, await csrf_of(http)


@pytest.fixture
async def owner_without_limits(
    container: Container, tenant: Tenant
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """The owner on a server whose sign-in limits never refuse, so that every example reaches
    the password or code check (the limits' 429: tests/integration/test_account_guesses.py)."""
    roomy = replace(
        container.settings,
        sign_in_max_failures=MAX_INT_SETTING,
        sign_in_ip_max_failures=MAX_INT_SETTING,
        sign_in_account_max_failures=MAX_INT_SETTING,
    )
    built = build_container(roomy, clock=container.clock)
    try:
        async with dashboard(built) as http:
            await sign_in(http, tenant.owner.email, "owner-password-1")
            yield http, await csrf_of(http)
    finally:
        await built.close()


@TEAM_FUZZ
@given(email=field_text, role=field_text, given_name=field_text, family_name=field_text)
async def test_the_invite_form_never_fails(
    owner: tuple[httpx.AsyncClient, str],
    caplog: pytest.LogCaptureFixture,
    email: str,
    role: str,
    given_name: str,
    family_name: str,
) -> None:
    http, csrf = owner
    caplog.clear()
    answer = await post_form(
        http,
        "/admin/team/invite",
        csrf,
        email=email,
        role=role,
        given_name=given_name,
        family_name=family_name,
    )
    assert_handled(answer, caplog)
    assert answer.status_code in {201, 400, 409}, answer.status_code


@TEAM_FUZZ
@given(user_id=field_text, role=field_text, action=st.sampled_from(["role", "remove", "transfer"]))
async def test_the_team_actions_never_fail(
    owner: tuple[httpx.AsyncClient, str],
    caplog: pytest.LogCaptureFixture,
    user_id: str,
    role: str,
    action: str,
) -> None:
    http, csrf = owner
    caplog.clear()
    path = f"/admin/team/{quote(user_id, safe='') or 'x'}/{action}"
    answer = await post_form(http, path, csrf, role=role)
    assert_handled(answer, caplog)
    assert answer.status_code in {400, 403, 404, 405, 409}, answer.status_code


@TEAM_FUZZ
@given(current=field_text, new=field_text, code=field_text)
async def test_the_account_forms_never_fail(
    owner_without_limits: tuple[httpx.AsyncClient, str],
    caplog: pytest.LogCaptureFixture,
    current: str,
    new: str,
    code: str,
) -> None:
    http, csrf = owner_without_limits
    caplog.clear()
    changed = await post_form(
        http,
        "/admin/account/password",
        csrf,
        current_password=current,
        new_password=new,
        confirm_password=new,
    )
    off = await post_form(http, "/admin/account/two-factor/disable", csrf, code=code)
    for answer in (changed, off):
        assert_handled(answer, caplog)
        assert answer.status_code == 400, answer.status_code


@TEAM_FUZZ
@given(password=field_text, given_name=field_text, family_name=field_text, token=field_text)
async def test_the_invitation_page_never_fails(
    container: Container,
    tenant: Tenant,
    caplog: pytest.LogCaptureFixture,
    password: str,
    given_name: str,
    family_name: str,
    token: str,
) -> None:
    caplog.clear()
    async with dashboard(container) as http:
        unknown = await http.get(f"/admin/invite/{quote(token, safe='') or 'x'}")
        assert_handled(unknown, caplog)
        assert unknown.status_code in {400, 404, 405}, unknown.status_code
        issued = await container.invitations.invite_to(
            tenant.company_id, Invitee(f"{uuid.uuid4().hex}@acme.test", Role.MEMBER), Actor.cli()
        )
        path = issued.url.removeprefix("http://localhost:8000")
        form = await http.get(path)
        answer = await http.post(
            path,
            data={
                "csrf_token": hidden(form.text, "csrf_token"),
                "password": password,
                "confirm_password": password,
                "given_name": given_name,
                "family_name": family_name,
            },
        )
    assert_handled(answer, caplog)
    assert answer.status_code in {303, 400}, answer.status_code
