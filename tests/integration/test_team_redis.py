"""With dashboard sessions in Redis, ending a user's sessions reaches every process."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest

from keyport.bootstrap import Container
from keyport.config import Settings
from keyport.domain.audit import Actor
from keyport.domain.clock import FixedClock
from tests.conftest import Tenant
from tests.support import databases
from tests.support.admin import dashboard, sign_in
from tests.support.containers import FAST_PASSWORDS, TEST_SECRET_KEY, two_processes
from tests.support.team import csrf_of, post_form


@pytest.fixture
async def processes(
    container: Container, database_url: str, clock: FixedClock
) -> AsyncIterator[tuple[Container, Container]]:
    settings = Settings(
        database_url=database_url,
        redis_url=databases.redis_url(),
        secret_key=TEST_SECRET_KEY,
        **FAST_PASSWORDS,
    )
    async with two_processes(settings, clock) as both:
        yield both


def an_address() -> str:
    return f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"


async def test_a_password_change_ends_the_sessions_held_on_other_processes(
    processes: tuple[Container, Container], tenant: Tenant
) -> None:
    first, second = processes
    ip = an_address()
    async with dashboard(first, client_ip=ip) as here, dashboard(second, client_ip=ip) as there:
        await sign_in(there, tenant.admin.email, "admin-password-1")
        await sign_in(here, tenant.admin.email, "admin-password-1")
        changed = await post_form(
            here,
            "/admin/account/password",
            await csrf_of(here),
            current_password="admin-password-1",
            new_password="admin-password-2",
            confirm_password="admin-password-2",
        )
        kept = await here.get("/admin/account")
        ended = await there.get("/admin/account")

    assert changed.status_code == 303
    assert kept.status_code == 200
    assert ended.status_code == 303 and ended.headers["location"].startswith("/admin/login")


async def test_an_operator_reset_ends_redis_sessions(
    processes: tuple[Container, Container], tenant: Tenant
) -> None:
    first, second = processes
    async with dashboard(first, client_ip=an_address()) as http:
        await sign_in(http, tenant.member.email, "member-password-1")
        await second.users.set_password(tenant.member.email, "member-password-2", Actor.cli())
        after = await http.get("/admin/account")

    assert after.status_code == 303
