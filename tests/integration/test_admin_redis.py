"""Dashboard sessions and sign-in limits in Redis, shared by several processes."""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select

from keyport.bootstrap import Container
from keyport.config import Settings
from keyport.db.tables import admin_sessions
from keyport.domain.clock import FixedClock
from tests.conftest import Tenant
from tests.support import databases
from tests.support.admin import dashboard, hidden, post_login, sign_in
from tests.support.containers import FAST_PASSWORDS, two_processes

SECURE_COOKIE = "__Host-keyport_session"


@pytest.fixture
async def processes(
    container: Container, database_url: str, clock: FixedClock
) -> AsyncIterator[tuple[Container, Container]]:
    """Two containers on the same database and Redis, as two server processes would be."""
    settings = Settings(
        database_url=database_url, redis_url=databases.redis_url(), **FAST_PASSWORDS
    )
    async with two_processes(settings, clock) as both:
        yield both


@pytest.fixture
def client_ip() -> str:
    """An address no other run uses, so Redis counters left by earlier runs cannot interfere."""
    return f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"


async def test_a_session_works_on_every_process_and_sign_out_ends_it_everywhere(
    processes: tuple[Container, Container], tenant: Tenant, client_ip: str
) -> None:
    first, second = processes
    async with dashboard(first, client_ip=client_ip) as on_first:
        answer = await post_login(on_first, tenant.owner.email, "owner-password-1")
        cookie = {"cookie": answer.headers["set-cookie"].split(";", 1)[0]}
        async with dashboard(second, client_ip=client_ip) as on_second:
            seen_by_second = await on_second.get("/admin/api-keys", headers=cookie)
            csrf = hidden(seen_by_second.text, "csrf_token")
            await on_second.post("/admin/logout", data={"csrf_token": csrf}, headers=cookie)
        after_sign_out = await on_first.get("/admin/api-keys", headers=cookie)

    assert seen_by_second.status_code == 200
    assert after_sign_out.status_code == 303


async def test_redis_holds_only_a_hash_of_the_token_and_the_table_stays_empty(
    processes: tuple[Container, Container], tenant: Tenant, client_ip: str
) -> None:
    first, _ = processes
    async with dashboard(first, client_ip=client_ip) as http:
        answer = await post_login(http, tenant.owner.email, "owner-password-1")
    token = answer.headers["set-cookie"].split(";", 1)[0].split("=", 1)[1]

    redis = Redis.from_url(databases.redis_url())
    try:
        key = f"keyport:session:{hashlib.sha256(token.encode()).hexdigest()}"
        stored = await redis.hgetall(key)
        ttl = await redis.ttl(key)
    finally:
        await redis.aclose()
    async with first.engine.connect() as connection:
        rows = await connection.scalar(select(func.count()).select_from(admin_sessions))

    fields = [f if isinstance(f, bytes) else f.encode() for f in (*stored.keys(), *stored.values())]
    assert stored and token.encode() not in b"".join(fields)
    assert 29 * 60 < ttl <= 30 * 60  # Redis forgets an idle session by itself
    assert rows == 0


async def test_an_idle_session_in_redis_ends_after_30_minutes(
    processes: tuple[Container, Container], tenant: Tenant, clock: FixedClock, client_ip: str
) -> None:
    first, _ = processes
    async with dashboard(first, client_ip=client_ip) as http:
        await sign_in(http, tenant.owner.email, "owner-password-1")
        clock.advance(timedelta(minutes=30))
        answer = await http.get("/admin/api-keys")

    assert answer.status_code == 303


async def test_sign_in_failures_count_across_processes(
    processes: tuple[Container, Container], tenant: Tenant, client_ip: str
) -> None:
    """The (account, IP) limit is one bucket in Redis, whichever process takes the attempt."""
    first, second = processes
    started = time.monotonic()
    for attempt in range(10):
        process = first if attempt % 2 else second
        async with dashboard(process, client_ip=client_ip) as http:
            failed = await post_login(http, tenant.admin.email, "wrong-password")
            assert failed.status_code == 400
    async with dashboard(first, client_ip=client_ip) as http:
        refused = await post_login(http, tenant.admin.email, "admin-password-1")

    assert refused.status_code == 429
    # Ten failures per 15 minutes: the next one is allowed 90 seconds after the first failure
    # (the bucket refills on Redis's clock while the attempts are made).
    took = time.monotonic() - started
    assert 90 - took - 1 <= int(refused.headers["retry-after"]) <= 90


async def test_a_create_form_sent_twice_to_two_processes_makes_one_key(
    processes: tuple[Container, Container], tenant: Tenant, client_ip: str
) -> None:
    first, second = processes
    async with dashboard(first, client_ip=client_ip) as on_first:
        csrf = await sign_in(on_first, tenant.owner.email, "owner-password-1")
        cookie = {"cookie": "; ".join(f"{k}={v}" for k, v in on_first.cookies.items())}
        form = {
            "csrf_token": csrf,
            "nonce": hidden((await on_first.get("/admin/api-keys/new")).text, "nonce"),
            "name": "Twice",
            "expiry": "30",
        }
        created = await on_first.post("/admin/api-keys", data=form)
        async with dashboard(second, client_ip=client_ip) as on_second:
            again = await on_second.post("/admin/api-keys", data=form, headers=cookie)

    assert created.status_code == 201
    assert (again.status_code, again.headers["location"]) == (
        303,
        "/admin/api-keys?notice=resubmitted",
    )
    assert (await first.keys.list_keys(tenant.company_id)).total == 2
