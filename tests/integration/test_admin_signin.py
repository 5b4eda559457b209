"""Signing in to and out of the dashboard: sessions, cookies, timeouts, limits and audit."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update

from keyport.bootstrap import Container
from keyport.db.tables import admin_sessions, users
from keyport.db.uow import SqlUnitOfWorkFactory
from keyport.domain.audit import Actor, AuditAction
from keyport.domain.clock import FixedClock
from keyport.domain.users import NewUser
from keyport.services.ports import AuditFilter
from tests.conftest import Tenant
from tests.support.admin import dashboard, hidden, post_login, sign_in, text_of

SECURE_COOKIE = "__Host-keyport_session"
WRONG = "Incorrect email or password."
THROTTLED = "Too many failed sign-in attempts. Please wait a few minutes and try again."


def set_cookie(answer: httpx.Response, name: str) -> str:
    for header in answer.headers.get_list("set-cookie"):
        if header.startswith(f"{name}="):
            return header
    raise AssertionError(f"no {name} cookie in {answer.headers.get_list('set-cookie')}")


def session_token(answer: httpx.Response) -> str:
    return set_cookie(answer, SECURE_COOKIE).split(";", 1)[0].split("=", 1)[1]


@pytest.mark.sqlite_only
async def test_sign_in_redirects_to_the_keys_with_a_strict_session_cookie(
    container: Container, tenant: Tenant
) -> None:
    async with dashboard(container) as http:
        answer = await post_login(http, tenant.owner.email, "owner-password-1")

    assert answer.status_code == 303
    assert answer.headers["location"] == "/admin/api-keys"
    cookie = set_cookie(answer, SECURE_COOKIE)
    assert "; HttpOnly" in cookie and "; Secure" in cookie
    assert "; SameSite=lax" in cookie and "; Path=/" in cookie


@pytest.mark.sqlite_only
async def test_cookies_are_secure_also_over_plain_http_on_localhost(
    container: Container, tenant: Tenant
) -> None:
    """Browsers keep Secure cookies from http://localhost and http://127.0.0.1, so there is no
    exception for them (issue 9); tests/e2e/test_dashboard.py signs in there in Chromium."""
    for origin in ["http://localhost:8000", "http://127.0.0.1:8000", "http://[::1]:8000"]:
        async with dashboard(container, base_url=origin) as http:
            login = await http.get("/admin/login")

        cookie = set_cookie(login, "__Host-keyport_login_csrf")
        assert "; HttpOnly" in cookie and "; SameSite=lax" in cookie and "; Secure" in cookie
        assert "was not loaded over HTTPS" not in text_of(login.text)


@pytest.mark.sqlite_only
async def test_plain_http_elsewhere_keeps_the_cookie_secure_and_says_why(
    container: Container, tenant: Tenant
) -> None:
    async with dashboard(container, base_url="http://keyport.test") as http:
        page = await http.get("/admin/login")
        # A browser keeps no Secure cookie from plain http, so the form cannot be sent back.
        answer = await post_login(http, tenant.owner.email, "owner-password-1")

    assert "was not loaded over HTTPS" in text_of(page.text)
    assert "; Secure" in set_cookie(page, "__Host-keyport_login_csrf")
    assert answer.status_code == 403


async def test_unknown_email_and_wrong_password_get_the_same_answer(
    container: Container, tenant: Tenant
) -> None:
    async with dashboard(container) as http:
        unknown = await post_login(http, "nobody@acme.test", "owner-password-1")
        wrong = await post_login(http, tenant.owner.email, "not-the-password")
        wrong_case = await post_login(http, tenant.owner.email.upper(), "OWNER-PASSWORD-1")

    for answer in (unknown, wrong, wrong_case):
        assert answer.status_code == 400
        assert WRONG in text_of(answer.text)
        assert SECURE_COOKIE not in answer.headers.get("set-cookie", "")
    assert unknown.text.replace("nobody@acme.test", tenant.owner.email) == wrong.text


async def test_a_user_without_a_password_cannot_sign_in(
    container: Container, tenant: Tenant
) -> None:
    await container.users.create_user(
        tenant.company_id, NewUser("nopass@acme.test", "No", "Password", "UTC"), Actor.cli()
    )
    async with dashboard(container) as http:
        answer = await post_login(http, "nopass@acme.test", "")

    assert answer.status_code == 400
    assert WRONG in text_of(answer.text)


@pytest.mark.sqlite_only
async def test_sign_in_without_the_login_token_is_refused(
    container: Container, tenant: Tenant
) -> None:
    form = {"email": tenant.owner.email, "password": "owner-password-1"}
    async with dashboard(container) as http:
        missing = await http.post("/admin/login", data=form)
        await http.get("/admin/login")
        forged = await http.post("/admin/login", data={**form, "csrf_token": "x" * 43})

    for answer in (missing, forged):
        assert answer.status_code == 403
        assert "This form has expired or did not come from this dashboard." in text_of(answer.text)
        assert SECURE_COOKIE not in answer.headers.get("set-cookie", "")


async def test_failed_sign_ins_are_limited_per_ip_across_accounts(
    container: Container, tenant: Tenant
) -> None:
    """Password spraying: 30 failures from one IP on any accounts, then that IP waits."""
    async with dashboard(container) as http:
        for attempt in range(30):
            failed = await post_login(http, f"guess{attempt}@acme.test", "wrong-password")
            assert failed.status_code == 400
        refused = await post_login(http, tenant.owner.email, "owner-password-1")
    async with dashboard(container, client_ip="198.51.100.9") as elsewhere:
        allowed = await post_login(elsewhere, tenant.owner.email, "owner-password-1")

    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "30"  # 30 per 15 minutes: one every 30 seconds
    assert THROTTLED in text_of(refused.text)
    assert SECURE_COOKIE not in refused.headers.get("set-cookie", "")
    assert allowed.status_code == 303


async def test_failed_sign_ins_are_limited_per_account_and_ip(
    container: Container, tenant: Tenant
) -> None:
    async with dashboard(container) as http:
        for _ in range(10):
            assert (await post_login(http, tenant.owner.email, "wrong-password")).status_code == 400
        refused = await post_login(http, tenant.owner.email, "owner-password-1")
        other_account = await post_login(http, tenant.admin.email, "admin-password-1")

    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "90"  # 10 per 15 minutes: one every 90 seconds
    assert THROTTLED in text_of(refused.text)
    assert other_account.status_code == 303


async def test_failures_from_many_ips_do_not_lock_the_owner_out(
    container: Container, tenant: Tenant
) -> None:
    for attempt in range(10):
        async with dashboard(container, client_ip=f"198.51.100.{attempt}") as http:
            assert (await post_login(http, tenant.owner.email, "wrong-password")).status_code == 400
    async with dashboard(container, client_ip="192.0.2.50") as http:
        owner = await post_login(http, tenant.owner.email, "owner-password-1")

    assert owner.status_code == 303


async def test_the_limit_lifts_as_the_window_passes(
    container: Container, tenant: Tenant, clock: FixedClock
) -> None:
    async with dashboard(container) as http:
        for _ in range(10):
            await post_login(http, tenant.owner.email, "wrong-password")
        assert (await post_login(http, tenant.owner.email, "owner-password-1")).status_code == 429
        clock.advance(timedelta(seconds=91))
        assert (await post_login(http, tenant.owner.email, "owner-password-1")).status_code == 303


async def test_sign_ins_and_sign_outs_are_audited_with_user_and_ip(
    container: Container, tenant: Tenant
) -> None:
    async with dashboard(container) as http:
        await post_login(http, "typo@acme.test", "owner-password-1")
        await post_login(http, tenant.owner.email, "wrong-password")
        csrf = await sign_in(http, tenant.owner.email, "owner-password-1")
        await http.post("/admin/logout", data={"csrf_token": csrf})

    async with SqlUnitOfWorkFactory(container.engine)() as uow:
        events, _ = await uow.audit.list(AuditFilter(), 100, 0)
    sign_events = [e for e in events if e.action.startswith("auth.")]
    assert [(e.action, e.actor.user_id, e.actor.ip, e.details) for e in sign_events] == [
        (AuditAction.SIGNED_OUT, tenant.owner.id, "203.0.113.7", {}),
        (AuditAction.SIGN_IN_SUCCEEDED, tenant.owner.id, "203.0.113.7", {}),
        (AuditAction.SIGN_IN_FAILED, tenant.owner.id, "203.0.113.7", {"reason": "wrong password"}),
        (AuditAction.SIGN_IN_FAILED, None, "203.0.113.7", {"reason": "unknown email"}),
    ]
    assert all("typo@acme.test" not in str(e.details) for e in events)


async def test_sign_out_ends_the_session_at_once(container: Container, tenant: Tenant) -> None:
    async with dashboard(container) as http:
        answer = await post_login(http, tenant.owner.email, "owner-password-1")
        token = session_token(answer)
        csrf = hidden((await http.get("/admin/api-keys")).text, "csrf_token")
        signed_out = await http.post("/admin/logout", data={"csrf_token": csrf})
    async with dashboard(container) as replay:
        again = await replay.get("/admin/api-keys", headers={"cookie": f"{SECURE_COOKIE}={token}"})

    assert signed_out.status_code == 303
    assert signed_out.headers["location"] == "/admin/login?notice=signed-out"
    assert "Max-Age=0" in set_cookie(signed_out, SECURE_COOKIE)
    assert again.status_code == 303
    assert again.headers["location"] == "/admin/login?next=%2Fadmin%2Fapi-keys&notice=expired"


@pytest.mark.sqlite_only
async def test_sign_out_without_the_csrf_token_is_refused(
    container: Container, tenant: Tenant
) -> None:
    async with dashboard(container) as http:
        await sign_in(http, tenant.owner.email, "owner-password-1")
        refused = await http.post("/admin/logout", data={})
        still_in = await http.get("/admin/api-keys")

    assert refused.status_code == 403
    assert still_in.status_code == 200


async def test_a_session_ends_after_30_idle_minutes(
    container: Container, tenant: Tenant, clock: FixedClock
) -> None:
    async with dashboard(container) as http:
        await sign_in(http, tenant.owner.email, "owner-password-1")
        clock.advance(timedelta(minutes=29))
        assert (await http.get("/admin/api-keys")).status_code == 200
        clock.advance(timedelta(minutes=30, seconds=1))
        ended = await http.get("/admin/api-keys")
        login = await http.get(ended.headers["location"])

    assert ended.status_code == 303
    assert ended.headers["location"] == "/admin/login?next=%2Fadmin%2Fapi-keys&notice=expired"
    assert "Your session has ended. Please sign in again." in text_of(login.text)


async def test_activity_keeps_a_session_only_until_12_hours_after_sign_in(
    container: Container, tenant: Tenant, clock: FixedClock
) -> None:
    async with dashboard(container) as http:
        await sign_in(http, tenant.owner.email, "owner-password-1")
        for _ in range(35):  # 11 h 40 min of steady use
            clock.advance(timedelta(minutes=20))
            assert (await http.get("/admin/api-keys")).status_code == 200
        clock.advance(timedelta(minutes=20))
        ended = await http.get("/admin/api-keys")

    assert ended.status_code == 303


async def test_a_deleted_user_is_signed_out_at_once(container: Container, tenant: Tenant) -> None:
    async with dashboard(container) as http:
        await sign_in(http, tenant.admin.email, "admin-password-1")
        await container.users.delete_user(tenant.owner, tenant.admin.id, Actor.cli())
        answer = await http.get("/admin/api-keys")

    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/admin/login")


async def test_a_demoted_admin_loses_access_at_once(container: Container, tenant: Tenant) -> None:
    async with dashboard(container) as http:
        await sign_in(http, tenant.admin.email, "admin-password-1")
        # No use case changes roles yet, so the change is made where a future one would.
        async with container.engine.begin() as connection:
            await connection.execute(
                update(users).where(users.c.id == tenant.admin.id).values(role="member")
            )
        answer = await http.get("/admin/api-keys")

    assert answer.status_code == 403
    assert "Only company owners and admins can manage API keys" in text_of(answer.text)


async def test_only_a_hash_of_the_session_token_is_stored(
    container: Container, tenant: Tenant
) -> None:
    async with dashboard(container) as http:
        token = session_token(await post_login(http, tenant.owner.email, "owner-password-1"))

    async with container.engine.connect() as connection:
        rows = (await connection.execute(select(admin_sessions))).all()
    assert [row.id for row in rows] == [hashlib.sha256(token.encode()).hexdigest()]
    assert all(token not in str(tuple(row)) for row in rows)


@pytest.mark.sqlite_only
@pytest.mark.parametrize(
    ("asked", "landed"),
    [
        ("/admin/api-keys/new", "/admin/api-keys/new"),
        ("https://evil.test/admin/", "/admin/api-keys"),
        ("//evil.test/admin/", "/admin/api-keys"),
        ("/admin/../v4/user", "/admin/api-keys"),
        ("/admin/login", "/admin/api-keys"),
    ],
)
async def test_sign_in_only_returns_to_a_dashboard_page(
    container: Container, tenant: Tenant, asked: str, landed: str
) -> None:
    async with dashboard(container) as http:
        answer = await post_login(http, tenant.owner.email, "owner-password-1", next_path=asked)

    assert answer.status_code == 303
    assert answer.headers["location"] == landed


@pytest.mark.sqlite_only
async def test_a_signed_in_visit_to_the_login_page_goes_to_the_keys(
    container: Container, tenant: Tenant
) -> None:
    async with dashboard(container) as http:
        await sign_in(http, tenant.owner.email, "owner-password-1")
        answer = await http.get("/admin/login")

    assert answer.status_code == 303
    assert answer.headers["location"] == "/admin/api-keys"
