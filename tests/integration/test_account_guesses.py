"""Issue 30, items 4 and 5: every check of a password or a code reserves from the account's
sign-in limits — on the account pages behind a session too — and guesses on one account are
capped across all addresses, while the holder signs in from places they signed in from before.
IPv6 addresses count by their /64 in every per-address limit, the API's included.

On SQLite and PostgreSQL (the places an account signed in from are stored), and the cap once
more through Redis shared by two processes."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from keyport.bootstrap import Container, build_container
from keyport.config import Settings
from keyport.domain.audit import Actor
from keyport.domain.clock import FixedClock
from keyport.services.accounts.sign_in_limiter import TooManySignInAttempts
from keyport.web.app import create_app
from tests.conftest import Tenant, make_tenant
from tests.support import databases
from tests.support.admin import ORIGIN, count_checks, dashboard, post_login, sign_in, text_of
from tests.support.containers import two_processes
from tests.support.team import code_now, csrf_of, post_form, two_factor_session

THROTTLED = TooManySignInAttempts.message
PASSWORD = "owner-password-1"
HOME = "192.0.2.10"  # where the owner signed in before


_APPS: dict[int, Any] = {}


async def login_from(container: Container, ip: str, email: str, password: str) -> httpx.Response:
    """One sign-in from `ip`, in a fresh browser (the app is built once per container)."""
    app = _APPS.get(id(container))
    if app is None:
        _APPS.clear()
        app = _APPS[id(container)] = create_app(container, run_background=False)
    transport = httpx.ASGITransport(app=app, client=(ip, 50000))
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as http:
        return await post_login(http, email, password)


def stranger(n: int) -> str:
    return f"198.51.100.{n}"


def assert_throttled_page(answer: httpx.Response) -> None:
    assert answer.status_code == 429
    assert THROTTLED in text_of(answer.text)
    assert int(answer.headers["retry-after"]) >= 1


# Item 5: the cap per account, across addresses.


async def test_guesses_on_one_account_are_capped_across_all_addresses(
    container: Container, tenant: Tenant
) -> None:
    """25 addresses guess once each: 20 guesses are checked (the default cap), the rest are
    refused unchecked with the sign-in page, 429, and the limits' message."""
    checked = count_checks(container)
    statuses = []
    for n in range(25):
        answer = await login_from(container, stranger(n), tenant.owner.email, "guess")
        statuses.append(answer.status_code)
        if answer.status_code == 429:
            assert_throttled_page(answer)
            assert "Sign in" in text_of(answer.text)
    assert statuses == [400] * 20 + [429] * 5
    assert checked[0] == 20


async def test_the_holder_signs_in_at_once_from_a_place_they_signed_in_from(
    container: Container, tenant: Tenant, clock: FixedClock
) -> None:
    """The address of an earlier sign-in (within 30 days) is spared the cap; a new place of
    the holder's is capped like a stranger's (the documented trade-off), until an admin sets
    a new password."""
    assert (await login_from(container, HOME, tenant.owner.email, PASSWORD)).status_code == 303
    clock.advance(timedelta(days=29))
    for n in range(20):
        assert (
            await login_from(container, stranger(n), tenant.owner.email, "x")
        ).status_code == 400
    assert_throttled_page(await login_from(container, stranger(99), tenant.owner.email, "x"))

    at_home = await login_from(container, HOME, tenant.owner.email, PASSWORD)
    assert at_home.status_code == 303
    new_place = await login_from(container, "203.0.113.200", tenant.owner.email, PASSWORD)
    assert_throttled_page(new_place)

    await container.users.set_password(tenant.owner.email, "a-brand-new-password", Actor.cli())
    after_reset = await login_from(
        container, "203.0.113.200", tenant.owner.email, "a-brand-new-password"
    )
    assert after_reset.status_code == 303


async def test_a_place_is_known_for_thirty_days(
    container: Container, tenant: Tenant, clock: FixedClock
) -> None:
    assert (await login_from(container, HOME, tenant.owner.email, PASSWORD)).status_code == 303
    clock.advance(timedelta(days=30, seconds=1))
    for n in range(20):
        await login_from(container, stranger(n), tenant.owner.email, "x")
    assert_throttled_page(await login_from(container, HOME, tenant.owner.email, PASSWORD))


async def test_an_ipv6_subscriber_counts_as_one_place(container: Container, tenant: Tenant) -> None:
    """Eleven addresses of one /64 share the (account, place) limit of ten; another /64 is
    another place. The /64 of an earlier sign-in is a known place."""
    statuses = [
        (await login_from(container, f"2001:db8:1:2::{n:x}", tenant.admin.email, "x")).status_code
        for n in range(1, 12)
    ]
    assert statuses == [400] * 10 + [429]
    elsewhere = await login_from(container, "2001:db8:1:3::1", tenant.admin.email, "x")
    assert elsewhere.status_code == 400

    signed_in = await login_from(container, "2001:db8:9:9::1", tenant.owner.email, PASSWORD)
    assert signed_in.status_code == 303
    for n in range(20):
        await login_from(container, stranger(n), tenant.owner.email, "x")
    same_64 = await login_from(container, "2001:db8:9:9:ffff::7", tenant.owner.email, PASSWORD)
    assert same_64.status_code == 303


async def test_an_ipv6_subscriber_is_one_place_across_accounts(
    container: Container, tenant: Tenant
) -> None:
    """The per-address limit across accounts (30) counts the /64 too."""
    for n in range(30):
        email = f"nobody-{n}@acme.test"
        answer = await login_from(container, f"2001:db8:5:5::{n + 1:x}", email, "x")
        assert answer.status_code == 400
    assert_throttled_page(
        await login_from(container, "2001:db8:5:5:1::1", "someone@acme.test", "x")
    )


async def test_the_cap_is_shared_by_processes_through_redis(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'shared.db'}",
        redis_url=databases.redis_url(),
        password_time_cost=1,
        password_memory_cost=64,
        sign_in_account_max_failures=6,
    )
    base = f"198.18.{random.randint(0, 255)}"
    async with two_processes(settings, migrate=True) as (first, second):
        tenant = await make_tenant(first, "Initech")
        statuses = [
            (
                await login_from((first, second)[n % 2], f"{base}.{n + 1}", tenant.admin.email, "x")
            ).status_code
            for n in range(8)
        ]
    assert statuses == [400] * 6 + [429] * 2


# Item 5: the API's failed-authentication throttle counts an IPv6 /64 as one client.


@pytest.fixture
async def api_from_ipv6(container: Container) -> AsyncIterator[Callable[[str], httpx.AsyncClient]]:
    built = build_container(
        replace(container.settings, auth_failure_limit=3), clock=container.clock
    )
    app = create_app(built, run_background=False)

    def client(ip: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(ip, 50000))
        return httpx.AsyncClient(transport=transport, base_url="http://keyport.test")

    yield client
    await built.close()


async def test_failed_api_authentications_count_per_ipv6_64(
    api_from_ipv6: Callable[[str], httpx.AsyncClient], tenant: Tenant
) -> None:
    wrong = {"Authorization": "Bearer ak_live:nope"}
    for n in range(1, 4):
        async with api_from_ipv6(f"2001:db8:7:7::{n}") as http:
            assert (await http.get("/v4/user/me", headers=wrong)).status_code == 401
    async with api_from_ipv6("2001:db8:7:7:abcd::1") as http:
        refused = await http.get("/v4/user/me", headers=tenant.auth())
    assert (refused.status_code, refused.json()) == (
        429,
        {"statusCode": 429, "message": "Too Many Requests", "error": "Too Many Requests"},
    )
    async with api_from_ipv6("2001:db8:7:8::1") as http:
        assert (await http.get("/v4/user/me", headers=tenant.auth())).status_code == 200


# Item 4: checks behind a session reserve from the same limits.


async def test_the_current_password_cannot_be_guessed_behind_a_session(
    container: Container, tenant: Tenant
) -> None:
    """A stolen session guessing the current password: ten wrong (the (account, place)
    limit), then the account page with 429 — and the right password is not even checked."""
    async with dashboard(container) as http:
        csrf = await sign_in(http, tenant.owner.email, PASSWORD)
        checked = count_checks(container)

        async def change(current: str) -> httpx.Response:
            return await post_form(
                http,
                "/admin/account/password",
                csrf,
                current_password=current,
                new_password="another-password-1",
                confirm_password="another-password-1",
            )

        for _ in range(10):
            assert (await change("guess")).status_code == 400
        refused = await change(PASSWORD)
    assert_throttled_page(refused)
    assert "Change password" in text_of(refused.text)
    assert checked[0] == 10


async def test_password_guesses_on_the_account_page_count_against_sign_in(
    container: Container, tenant: Tenant
) -> None:
    """One set of limits per account: five wrong on the account page and five at sign-in
    from the same address spend the pair's ten."""
    async with dashboard(container) as http:
        csrf = await sign_in(http, tenant.owner.email, PASSWORD)
        for _ in range(5):
            wrong = await post_form(
                http,
                "/admin/account/password",
                csrf,
                current_password="guess",
                new_password="another-password-1",
                confirm_password="another-password-1",
            )
            assert wrong.status_code == 400
    async with dashboard(container) as http:
        for _ in range(5):
            assert (await post_login(http, tenant.owner.email, "guess")).status_code == 400
        assert_throttled_page(await post_login(http, tenant.owner.email, PASSWORD))


async def test_totp_codes_cannot_be_guessed_behind_a_session(
    container: Container, tenant: Tenant, clock: FixedClock
) -> None:
    """Turning two-factor off needs a code: ten wrong, then 429 — the right code included."""
    async with two_factor_session(container, tenant.owner.email, PASSWORD, clock) as (
        http,
        secret,
        _,
    ):
        csrf = await csrf_of(http)
        for n in range(10):
            wrong = await post_form(
                http, "/admin/account/two-factor/disable", csrf, code=f"{n:06d}"
            )
            assert wrong.status_code == 400
        clock.advance(timedelta(seconds=30))
        refused = await post_form(
            http, "/admin/account/two-factor/disable", csrf, code=code_now(secret, clock)
        )
        assert_throttled_page(refused)
        assert "Two-factor sign-in" in text_of(refused.text)
        still_on = await http.get("/admin/account")
    assert "Turn off" in text_of(still_on.text)


async def test_codes_on_the_setup_page_are_limited_too(
    container: Container, tenant: Tenant
) -> None:
    async with dashboard(container) as http:
        csrf = await sign_in(http, tenant.owner.email, PASSWORD)
        assert (await post_form(http, "/admin/account/two-factor/setup", csrf)).status_code == 303
        statuses = [
            (
                await post_form(http, "/admin/account/two-factor/confirm", csrf, code="000000")
            ).status_code
            for _ in range(11)
        ]
        refused = await post_form(http, "/admin/account/two-factor/confirm", csrf, code="000000")
    assert statuses == [400] * 10 + [429]
    assert_throttled_page(refused)
