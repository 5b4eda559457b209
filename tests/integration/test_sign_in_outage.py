"""While Redis is unreachable no password is checked: the sign-in limits live there, and a
process that counted guesses on its own would give every process its own allowance (the
cluster run, tests/chaos/, counted them). The dashboard answers 503, as it does for sessions."""

from __future__ import annotations

import pytest

from keyport.config import Settings
from keyport.domain.clock import FixedClock
from tests.conftest import Tenant
from tests.support.admin import dashboard, post_login
from tests.support.containers import FAST_PASSWORDS, migrated
from tests.support.server import free_port


@pytest.mark.parametrize("password", ["wrong-password", "admin-password-1"])
async def test_no_password_is_checked_while_redis_is_unreachable(
    database_url: str, clock: FixedClock, tenant: Tenant, password: str
) -> None:
    unreachable = f"redis://127.0.0.1:{free_port()}/0"
    settings = Settings(database_url=database_url, redis_url=unreachable, **FAST_PASSWORDS)
    async with migrated(settings, clock) as process, dashboard(process) as http:
        answers = [await post_login(http, tenant.admin.email, password) for _ in range(3)]

    assert [a.status_code for a in answers] == [503, 503, 503]
    assert "cannot be reached" in answers[0].text
