"""Rate limits shared through Redis by several processes, and what happens without it.

Two containers on one database and one Redis stand for two processes. Buckets in Redis run on
Redis's clock, so these tests use real time (a refill of 100 a minute is 1.7 tokens a second).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from redis import exceptions as redis_errors
from redis.asyncio import Redis

from keyport.bootstrap import Container, build_container
from keyport.config import Settings
from keyport.domain.audit import Actor
from keyport.domain.keys import generate_key
from keyport.domain.rate_limits import Policy
from keyport.domain.users import NewUser
from keyport.redis.buckets import RedisBuckets
from keyport.redis.leases import LEASE_FRACTION, RedisLeases
from keyport.web.app import create_app
from tests.conftest import make_tenant
from tests.support import databases
from tests.support.admin import dashboard, post_login
from tests.support.containers import FAST_PASSWORDS, two_processes
from tests.support.server import free_port

REFILL_PER_SECOND = 100 / 60


def an_ip() -> str:
    """A fresh address per run: Redis remembers buckets for a while."""
    return f"198.18.{random.randint(0, 255)}.{random.randint(1, 254)}"


def client(container: Container, ip: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(container, run_background=False), client=(ip, 1))
    return httpx.AsyncClient(transport=transport, base_url="http://keyport.test")


@pytest.fixture
async def processes(tmp_path: Path) -> AsyncIterator[tuple[Container, Container]]:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'shared.db'}",
        redis_url=databases.redis_url(),
        **FAST_PASSWORDS,
    )
    async with two_processes(settings, migrate=True) as both:
        yield both


async def test_two_processes_share_one_bucket_per_key(
    processes: tuple[Container, Container],
) -> None:
    first, second = processes
    tenant = await make_tenant(first, "Acme")
    started = time.monotonic()
    statuses = []
    async with client(first, an_ip()) as one, client(second, an_ip()) as other:
        for n in range(260):
            answer = await (one if n % 2 else other).get("/v4/user/me", headers=tenant.auth())
            statuses.append(answer.status_code)
    refilled = (time.monotonic() - started) * REFILL_PER_SECOND
    assert set(statuses) == {200, 429}
    assert 200 <= statuses.count(200) <= 200 + refilled + 1
    assert answer.headers["ratelimit-limit"] == "200"


async def test_a_lease_takes_at_most_an_eighth_of_what_is_left_and_takes_back_returns() -> None:
    redis = Redis.from_url(databases.redis_url())
    leases, exact = RedisLeases(redis), RedisBuckets(redis)
    key, policy = f"lease-test:{uuid.uuid4().hex}", Policy(60, 100)  # a token a second
    try:
        granted, left = await leases.lease(key, policy, 1_000, 0)
        assert granted == 12 and 87.9 <= left <= 88.1  # 100 // 8, and the bucket keeps 88
        granted, left = await leases.lease(key, policy, 3, 5)  # 5 unspent come back
        assert granted == 3 and 89.9 <= left <= 90.1
        exact_decision = await exact.take(key, policy)  # the exact script shares the bucket
        assert exact_decision.allowed and 88.9 <= exact_decision.tokens <= 89.1
        for _ in range(200):
            granted, left = await leases.lease(key, policy, 1_000, 0)
            if granted == 0:
                break
            assert granted <= max(1, (left + granted) // LEASE_FRACTION)
        assert granted == 0 and left < 1
    finally:
        await redis.delete("keyport:rate:" + key)
        await redis.aclose()


async def test_asks_for_many_keys_at_once_go_in_few_script_calls_and_each_is_right() -> None:
    redis = Redis.from_url(databases.redis_url())
    leases = RedisLeases(redis)
    run = uuid.uuid4().hex
    keys = [f"lease-batch:{run}:{i}" for i in range(1_200)]
    policy = Policy(60, 100)
    try:
        started = time.monotonic()
        await leases.lease(keys[0], policy, 3, 0)  # 100 → 97
        answers = await asyncio.gather(
            *(leases.lease(key, policy, 1_000 if i % 2 else 5, 0) for i, key in enumerate(keys))
        )
        refilled = (time.monotonic() - started) * policy.per_second  # a token a second
        assert leases.calls <= 1 + 3  # 1,200 asks in calls of at most 512
        assert answers[0][0] == 5  # the first key again: 97 - 5, and what refilled meanwhile
        assert 91.9 <= answers[0][1] <= 92.1 + refilled
        for i, (granted, left) in enumerate(answers[1:], start=1):
            want = 1_000 if i % 2 else 5
            assert (granted, round(left)) == (min(want, 12), 100 - min(want, 12)), i
        await redis.delete("keyport:rate:" + keys[1])
        fresh = await leases.lease(keys[1], policy, 1_000, 0)
        assert fresh[0] == 12
    finally:
        await redis.delete(*("keyport:rate:" + key for key in keys))
        await redis.aclose()


async def test_a_failed_script_call_fails_every_ask_in_it() -> None:
    redis = Redis.from_url(databases.redis_url())
    leases = RedisLeases(redis, prefix="keyport:rate:")
    key = f"lease-fail:{uuid.uuid4().hex}"
    await redis.set("keyport:rate:" + key, "not a hash")  # HMGET on a string fails
    try:
        results = await asyncio.gather(
            leases.lease(key, Policy(60, 100), 5, 0),
            leases.lease(key + "-other", Policy(60, 100), 5, 0),
            return_exceptions=True,
        )
        assert all(isinstance(r, redis_errors.ResponseError) for r in results), results
        assert (await leases.lease(key + "-other", Policy(60, 100), 5, 0))[0] == 5  # next call
    finally:
        await redis.delete("keyport:rate:" + key, "keyport:rate:" + key + "-other")
        await redis.aclose()


async def test_failed_authentications_from_one_ip_add_up_across_processes(
    processes: tuple[Container, Container],
) -> None:
    first, second = processes
    tenant = await make_tenant(first, "Acme")
    guess = {"Authorization": f"Bearer {generate_key(uuid.uuid4())}"}
    ip = an_ip()
    async with client(first, ip) as one, client(second, ip) as other:
        assert {(await one.get("/v4/user/me", headers=guess)).status_code for _ in range(60)} == {
            401
        }
        # The other process learns it at this IP's next failure there, and refuses from then on.
        assert (await other.get("/v4/user/me", headers=guess)).status_code == 401
        assert (await other.get("/v4/user/me", headers=tenant.auth())).status_code == 429
        assert (await one.get("/v4/user/me", headers=tenant.auth())).status_code == 429


async def test_without_redis_each_process_limits_on_its_own_and_says_so_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'alone.db'}",
        redis_url=f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
        **FAST_PASSWORDS,
    )
    container = build_container(settings)
    await container.migrate()
    try:
        company = await container.companies.create_company(
            "Acme", NewUser("o@acme.test", "O", "W", "UTC"), Actor.cli()
        )
        issued = await container.keys.issue_key(
            company.company.id, name=None, days=5, actor=Actor.cli()
        )
        headers = {"Authorization": f"Bearer {issued.key}"}
        with caplog.at_level(logging.WARNING, logger="keyport.services.access.rate_limits"):
            async with client(container, an_ip()) as http:
                statuses = [
                    (await http.get("/v4/user/me", headers=headers)).status_code for _ in range(205)
                ]
        assert statuses[:200] == [200] * 200 and set(statuses[200:]) == {429}
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert warnings == [
            "shared rate-limit store unreachable: limiting per process until it is back"
        ]
    finally:
        await container.close()


async def test_without_redis_the_dashboard_answers_503_not_500(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'alone.db'}",
        redis_url=f"redis://127.0.0.1:{free_port()}/0",  # sessions live there: nothing listens
        **FAST_PASSWORDS,
    )
    container = build_container(settings)
    await container.migrate()
    try:
        tenant = await make_tenant(container, "Acme")
        async with dashboard(container) as http:
            answer = await post_login(http, tenant.owner.email, "owner-password-1")
            assert (answer.status_code, answer.headers["retry-after"]) == (503, "5")
            assert (await http.get("/admin/api-keys")).status_code == 303  # to sign in
    finally:
        await container.close()
