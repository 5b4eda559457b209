"""Issue 9, items 2 and 3: sign-in limits reserve before the password is checked, block per
(account, IP) and limit an IP across accounts. (The cap per account and IPv6 grouping:
tests/integration/test_account_guesses.py.)

Passwords are hashed with a real argon2 cost here (tens of milliseconds), so that parallel
attempts really overlap the check; once with the limits in process memory (SQLite and
PostgreSQL) and once shared by two processes through Redis.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from keyport.bootstrap import Container, build_container
from keyport.config import Settings
from keyport.db.uow import SqlUnitOfWorkFactory
from keyport.domain.rate_limits import Policy
from keyport.services.access.rate_limits import MemoryBuckets
from keyport.services.accounts.sign_in_limiter import (
    SignInLimiter,
    SignInLimits,
    TooManySignInAttempts,
)
from tests.conftest import Tenant, make_tenant
from tests.support import databases
from tests.support.admin import count_checks, dashboard, post_login
from tests.support.containers import two_processes

SLOW_ENOUGH: dict[str, Any] = {"password_time_cost": 2, "password_memory_cost": 8192}


def an_ip() -> str:
    """A fresh address per run: Redis remembers buckets for a while."""
    return f"198.18.{random.randint(0, 255)}.{random.randint(1, 254)}"


async def parallel_wrong_passwords(
    containers: list[Container], email: str, ip: str, count: int
) -> list[int]:
    clients = [dashboard(c, client_ip=ip) for c in containers]
    https = [await c.__aenter__() for c in clients]
    try:
        answers = await asyncio.gather(
            *(post_login(https[n % len(https)], email, "wrong-password") for n in range(count))
        )
    finally:
        for c in clients:
            await c.__aexit__(None, None, None)
    return sorted(a.status_code for a in answers)


@pytest.fixture
async def slow_hashing(container: Container) -> AsyncIterator[Container]:
    built = build_container(replace(container.settings, **SLOW_ENOUGH), clock=container.clock)
    yield built
    await built.close()


async def test_twenty_parallel_wrong_passwords_are_checked_at_most_ten_times(
    slow_hashing: Container, container: Container
) -> None:
    tenant = await make_tenant(slow_hashing, "Initech")
    checked = count_checks(slow_hashing)
    statuses = await parallel_wrong_passwords([slow_hashing], tenant.admin.email, an_ip(), 20)

    assert checked[0] == 10
    assert statuses == [400] * 10 + [429] * 10


async def test_twenty_parallel_wrong_passwords_on_two_processes_with_redis(
    tmp_path: Path,
) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'shared.db'}",
        redis_url=databases.redis_url(),
        **SLOW_ENOUGH,
    )
    async with two_processes(settings, migrate=True) as (first, second):
        tenant = await make_tenant(first, "Initech")
        checked = count_checks(first, second)
        statuses = await parallel_wrong_passwords([first, second], tenant.admin.email, an_ip(), 20)

    assert checked[0] == 10
    assert statuses == [400] * 10 + [429] * 10


async def test_the_owner_signs_in_from_another_ip_after_failures_elsewhere(
    container: Container, tenant: Tenant
) -> None:
    """Nobody can lock an account: the attacker's IP is blocked, the owner's is not."""
    attacker, owner_ip = "198.51.100.66", "192.0.2.10"
    async with dashboard(container, client_ip=attacker) as http:
        http.cookies.clear()
        for _ in range(10):
            assert (await post_login(http, tenant.owner.email, "wrong-password")).status_code == 400
        assert (await post_login(http, tenant.owner.email, "owner-password-1")).status_code == 429
    async with dashboard(container, client_ip=owner_ip) as http:
        assert (await post_login(http, tenant.owner.email, "owner-password-1")).status_code == 303


async def test_successful_sign_ins_never_count_against_the_limits(
    container: Container, tenant: Tenant
) -> None:
    async with dashboard(container) as http:
        for _ in range(35):  # more than the per-IP (30) and per-pair (10) limits
            http.cookies.clear()
            assert (
                await post_login(http, tenant.owner.email, "owner-password-1")
            ).status_code == 303
        http.cookies.clear()
        for _ in range(10):
            assert (await post_login(http, tenant.owner.email, "wrong-password")).status_code == 400
        assert (await post_login(http, tenant.owner.email, "owner-password-1")).status_code == 429


async def test_a_refused_attempt_holds_no_tokens(container: Container) -> None:
    """Refused by the per-IP limit, an attempt gives back what it took of the pair's bucket."""
    store = MemoryBuckets(lambda: 1000.0)
    limits = SignInLimits(max_failures=5, ip_max_failures=1)
    limiter = SignInLimiter(store, limits, SqlUnitOfWorkFactory(container.engine), container.clock)
    await limiter.reserve("192.0.2.1", "a@x.test")
    with pytest.raises(TooManySignInAttempts):
        await limiter.reserve("192.0.2.1", "c@x.test")
    pair = f"sign-in:{hashlib.sha256(b'c@x.test').hexdigest()}:192.0.2.1"
    assert store.take_now(pair, Policy.per_window(5, limits.window)).tokens == 4


async def test_successful_sign_ins_give_their_tokens_back_in_redis(tmp_path: Path) -> None:
    """Give-back is one Lua script on Redis's clock: 15 sign-ins from one IP on two processes
    are more than the pair's 10, and the 10 failures after them are still all checked."""
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'shared.db'}",
        redis_url=databases.redis_url(),
        password_time_cost=1,
        password_memory_cost=64,
    )
    ip = an_ip()
    async with two_processes(settings, migrate=True) as (first, second):
        tenant = await make_tenant(first, "Initech")
        checked = count_checks(first, second)
        for attempt in range(15):
            async with dashboard(first if attempt % 2 else second, client_ip=ip) as http:
                answer = await post_login(http, tenant.admin.email, "admin-password-1")
                assert answer.status_code == 303, attempt
        async with dashboard(first, client_ip=ip) as http:
            failures = [
                (await post_login(http, tenant.admin.email, "wrong")).status_code for _ in range(11)
            ]

    assert failures == [400] * 10 + [429]
    assert checked[0] == 25
