"""The account page: password change ending other sessions, and TOTP two-factor sign-in."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from keyport.bootstrap import Container, build_container
from keyport.db.tables import recovery_codes, users
from keyport.db.uow import SqlUnitOfWorkFactory
from keyport.domain.audit import Actor, AuditAction, AuditEvent
from keyport.domain.clock import FixedClock
from keyport.services.ports import AuditFilter
from tests.conftest import Tenant
from tests.support.admin import dashboard, post_login, sign_in, text_of
from tests.support.team import (
    at_code_prompt,
    code_now,
    csrf_of,
    post_form,
    submit_code,
    two_factor_on,
    two_factor_session,
)

WRONG_CODE = "That code is not right, or was already used. Try the newest code."
PASSWORD = "owner-password-1"


def owner_two_factor(
    container: Container, tenant: Tenant, clock: FixedClock
) -> AbstractAsyncContextManager[tuple[httpx.AsyncClient, str, list[str]]]:
    """The owner signed in with TOTP turned on: the dashboard, the secret, the recovery codes."""
    return two_factor_session(container, tenant.owner.email, PASSWORD, clock)


async def test_changing_the_password_ends_the_other_sessions_only(
    container: Container, tenant: Tenant
) -> None:
    async with dashboard(container) as here, dashboard(container) as elsewhere:
        await sign_in(elsewhere, tenant.owner.email, PASSWORD)
        await sign_in(here, tenant.owner.email, PASSWORD)
        changed = await post_form(
            here,
            "/admin/account/password",
            await csrf_of(here),
            current_password=PASSWORD,
            new_password="brand-new-password-1",
            confirm_password="brand-new-password-1",
        )
        still_here = await here.get("/admin/account?notice=password-changed")
        gone_elsewhere = await elsewhere.get("/admin/account")
    async with dashboard(container) as http:
        old = await post_login(http, tenant.owner.email, PASSWORD)
        new = await post_login(http, tenant.owner.email, "brand-new-password-1")

    assert changed.status_code == 303
    assert changed.headers["location"] == "/admin/account?notice=password-changed"
    assert still_here.status_code == 200
    assert "Password changed. Your other sessions have ended." in text_of(still_here.text)
    assert gone_elsewhere.status_code == 303
    assert gone_elsewhere.headers["location"].startswith("/admin/login")
    assert (old.status_code, new.status_code) == (400, 303)


async def test_a_wrong_current_password_changes_nothing(
    container: Container, tenant: Tenant
) -> None:
    async with dashboard(container) as http:
        await sign_in(http, tenant.owner.email, PASSWORD)
        csrf = await csrf_of(http)
        wrong = await post_form(
            http,
            "/admin/account/password",
            csrf,
            current_password="not-my-password",
            new_password="brand-new-password-1",
            confirm_password="brand-new-password-1",
        )
        mismatch = await post_form(
            http,
            "/admin/account/password",
            csrf,
            current_password=PASSWORD,
            new_password="brand-new-password-1",
            confirm_password="brand-new-password-2",
        )
        both = await post_form(
            http,
            "/admin/account/password",
            csrf,
            current_password=PASSWORD,
            new_password="short",
            confirm_password="other",
        )
        no_csrf = await post_form(
            http,
            "/admin/account/password",
            None,
            current_password=PASSWORD,
            new_password="brand-new-password-1",
            confirm_password="brand-new-password-1",
        )

    assert wrong.status_code == 400
    assert "The current password is wrong." in text_of(wrong.text)
    assert mismatch.status_code == 400
    assert "The two new passwords do not match." in text_of(mismatch.text)
    assert both.status_code == 400  # issue 33, item 8: both problems at once
    assert "New password must be at least 10 characters." in text_of(both.text)
    assert "The two new passwords do not match." in text_of(both.text)
    assert no_csrf.status_code == 403
    async with dashboard(container) as http:
        assert (await post_login(http, tenant.owner.email, PASSWORD)).status_code == 303


async def test_an_operator_password_reset_ends_every_session(
    container: Container, tenant: Tenant
) -> None:
    async with dashboard(container) as http:
        await sign_in(http, tenant.member.email, "member-password-1")
        await container.users.set_password(tenant.member.email, "reset-password-1", Actor.cli())
        after = await http.get("/admin/account")

    assert after.status_code == 303
    assert after.headers["location"].startswith("/admin/login")


async def test_two_factor_sign_in_asks_for_the_code_after_the_password(
    container: Container, tenant: Tenant, clock: FixedClock
) -> None:
    async with owner_two_factor(container, tenant, clock) as (http, secret, codes):
        account = await http.get("/admin/account")
    clock.advance(timedelta(seconds=30))
    async with dashboard(container) as http:
        first = await post_login(http, tenant.owner.email, PASSWORD, next_path="/admin/team")
        before_code = await http.get("/admin/account")
        done = await submit_code(http, code_now(secret, clock), first.headers["location"])
        signed_in = await http.get("/admin/team")

    assert len(codes) == 10 and len(set(codes)) == 10
    assert "On" in text_of(account.text) and "10 of 10 recovery codes left" in text_of(account.text)
    assert first.status_code == 303
    assert first.headers["location"] == "/admin/login/code?next=%2Fadmin%2Fteam"
    assert "__Host-keyport_session" not in first.headers.get("set-cookie", "")
    assert before_code.status_code == 303  # not signed in before the code
    assert done.status_code == 303 and done.headers["location"] == "/admin/team"
    assert signed_in.status_code == 200


async def test_the_setup_needs_a_current_code_and_shows_a_qr_code(
    container: Container, tenant: Tenant, clock: FixedClock
) -> None:
    async with dashboard(container) as http:
        await sign_in(http, tenant.admin.email, "admin-password-1")
        csrf = await csrf_of(http)
        await post_form(http, "/admin/account/two-factor/setup", csrf)
        setup = await http.get("/admin/account/two-factor")
        wrong = await post_form(http, "/admin/account/two-factor/confirm", csrf, code="000000")
        account = await http.get("/admin/account")

    assert setup.status_code == 200 and setup.headers["cache-control"] == "no-store"
    assert 'src="data:image/svg+xml' in setup.text
    assert "otpauth" not in setup.text.replace("data:image/svg+xml", "")  # only in the image
    assert wrong.status_code == 400
    assert "That code is not the current code of your authenticator app." in text_of(wrong.text)
    assert "Set up two-factor sign-in" in text_of(account.text)  # still off


async def test_a_replayed_code_is_refused_within_its_window(
    container: Container, tenant: Tenant, clock: FixedClock
) -> None:
    secret, _ = await two_factor_on(container, tenant.owner.email, PASSWORD, clock)
    clock.advance(timedelta(seconds=30))
    code = code_now(secret, clock)
    async with at_code_prompt(container, tenant.owner.email, PASSWORD) as http:
        accepted = await submit_code(http, code)
    async with at_code_prompt(container, tenant.owner.email, PASSWORD) as http:
        replayed = await submit_code(http, code)
        earlier = await submit_code(http, code_now(secret, clock, steps_later=-1))
        after = await http.get("/admin/account")

    assert accepted.status_code == 303
    assert replayed.status_code == 400 and WRONG_CODE in text_of(replayed.text)
    assert earlier.status_code == 400  # an older step than the last one used
    assert after.status_code == 303


async def test_a_recovery_code_works_once(
    container: Container, tenant: Tenant, clock: FixedClock
) -> None:
    _, codes = await two_factor_on(container, tenant.owner.email, PASSWORD, clock)
    async with at_code_prompt(container, tenant.owner.email, PASSWORD) as http:
        used = await submit_code(http, codes[3].upper())
        account = await http.get("/admin/account")
    async with at_code_prompt(container, tenant.owner.email, PASSWORD) as http:
        again = await submit_code(http, codes[3])

    assert used.status_code == 303
    assert "9 of 10 recovery codes left" in text_of(account.text)
    assert again.status_code == 400 and WRONG_CODE in text_of(again.text)


async def test_wrong_codes_count_against_the_sign_in_limit(
    container: Container, tenant: Tenant, clock: FixedClock
) -> None:
    secret, _ = await two_factor_on(container, tenant.owner.email, PASSWORD, clock)
    clock.advance(timedelta(seconds=30))
    async with at_code_prompt(container, tenant.owner.email, PASSWORD) as http:
        for _ in range(10):
            assert (await submit_code(http, "123456")).status_code == 400
        refused = await submit_code(http, code_now(secret, clock))

    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0
    assert "Too many failed sign-in attempts" in text_of(refused.text)


async def test_a_forged_or_old_challenge_starts_over(
    container: Container, tenant: Tenant, clock: FixedClock
) -> None:
    secret, _ = await two_factor_on(container, tenant.owner.email, PASSWORD, clock)
    async with at_code_prompt(container, tenant.owner.email, PASSWORD) as http:
        challenge = http.cookies["__Host-keyport_sign_in_challenge"]
        _owner_id, expires, nonce, signature = challenge.split(".")
        http.cookies.set(
            "__Host-keyport_sign_in_challenge",
            f"{tenant.admin.id}.{expires}.{nonce}.{signature}",
            domain="keyport.test",
        )
        forged = await submit_code(http, code_now(secret, clock, steps_later=1))
    async with at_code_prompt(container, tenant.owner.email, PASSWORD) as http:
        clock.advance(timedelta(minutes=6))
        late = await submit_code(http, code_now(secret, clock))

    for answer in (forged, late):
        assert answer.status_code == 303
        assert answer.headers["location"] == "/admin/login?notice=code-expired"


async def test_turning_it_off_needs_a_current_code(
    container: Container, tenant: Tenant, clock: FixedClock
) -> None:
    async with owner_two_factor(container, tenant, clock) as (http, secret, _):
        csrf = await csrf_of(http)
        wrong = await post_form(http, "/admin/account/two-factor/disable", csrf, code="000000")
        clock.advance(timedelta(seconds=30))
        off = await post_form(
            http, "/admin/account/two-factor/disable", csrf, code=code_now(secret, clock)
        )
    async with dashboard(container) as http:
        plain = await post_login(http, tenant.owner.email, PASSWORD)

    assert wrong.status_code == 400
    assert off.status_code == 303
    assert off.headers["location"] == "/admin/account?notice=two-factor-off"
    assert plain.headers["location"] == "/admin/api-keys"  # no code step any more


async def test_secrets_are_stored_sealed_or_as_digests(
    container: Container, tenant: Tenant, clock: FixedClock
) -> None:
    secret, codes = await two_factor_on(container, tenant.owner.email, PASSWORD, clock)
    async with container.engine.connect() as connection:
        sealed = await connection.scalar(
            select(users.c.totp_secret).where(users.c.id == tenant.owner.id)
        )
        digests = (await connection.execute(select(recovery_codes.c.digest))).scalars().all()
        rows: list[Any] = []
        for table in ("users", "audit_events", "recovery_codes", "admin_sessions"):
            rows.extend((await connection.execute(text(f"SELECT * FROM {table}"))).all())
        everything = " ".join(str(row) for row in rows)

    assert sealed is not None and secret not in sealed and len(digests) == 10
    assert secret not in everything
    for code in codes:
        assert code not in everything and code.replace("-", "") not in everything


async def test_the_operator_resets_two_factor_and_ends_sessions(
    container: Container, tenant: Tenant, clock: FixedClock
) -> None:
    async with owner_two_factor(container, tenant, clock) as (http, _, _):
        await container.two_factor.reset(tenant.owner.email, Actor.cli())
        after = await http.get("/admin/account")
    async with dashboard(container) as http:
        plain = await post_login(http, tenant.owner.email, PASSWORD)

    assert after.status_code == 303
    assert plain.headers["location"] == "/admin/api-keys"
    async with container.engine.connect() as connection:
        count = await connection.scalar(text("SELECT count(*) FROM recovery_codes"))
    assert count == 0


@pytest.mark.parametrize(
    "action",
    [
        AuditAction.TWO_FACTOR_ENABLED,
        AuditAction.RECOVERY_CODE_USED,
        AuditAction.SECOND_FACTOR_FAILED,
        AuditAction.PASSWORD_CHANGED,
    ],
)
async def test_every_change_is_audited(
    container: Container, tenant: Tenant, clock: FixedClock, action: AuditAction
) -> None:
    async with owner_two_factor(container, tenant, clock) as (http, _, codes):
        await post_form(
            http,
            "/admin/account/password",
            await csrf_of(http),
            current_password=PASSWORD,
            new_password="brand-new-password-1",
            confirm_password="brand-new-password-1",
        )
    async with dashboard(container) as http:
        await post_login(http, tenant.owner.email, "brand-new-password-1")
        await submit_code(http, "999999")
        await submit_code(http, codes[0])
        log = await http.get(f"/admin/audit?action={action.value}")

    found, _ = await _events(container, tenant.company_id, action)
    assert len(found) == 1
    assert found[0].target_id == tenant.owner.id and found[0].actor.user_id == tenant.owner.id
    assert log.status_code == 200 and "1 event" in text_of(log.text)


async def _events(
    container: Container, company_id: str, action: AuditAction
) -> tuple[Sequence[AuditEvent], int]:
    async with SqlUnitOfWorkFactory(container.engine)() as uow:
        return await uow.audit.list(AuditFilter(company_id=company_id, action=action.value), 10, 0)


async def test_a_changed_server_secret_refuses_the_code_instead_of_failing(
    container: Container, tenant: Tenant, clock: FixedClock
) -> None:
    secret, _ = await two_factor_on(container, tenant.owner.email, PASSWORD, clock)
    other = build_container(
        replace(container.settings, secret_key="another-server-secret-0123456789-xyz"),
        clock=clock,
    )
    try:
        async with dashboard(other) as http:
            await post_login(http, tenant.owner.email, PASSWORD)
            refused = await submit_code(http, code_now(secret, clock, steps_later=1))
    finally:
        await other.close()

    assert refused.status_code == 400 and WRONG_CODE in text_of(refused.text)
