"""Faults for real: the test's own PostgreSQL and Redis are stopped, crashed and restarted
under a `keyport serve` that clients keep busy. Nothing answers 500, nothing succeeds that it
cannot vouch for, and service comes back by itself, without a restart.

Measured times (printed with `pytest -s`) are the numbers in docs/operations.md.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from keyport.domain.keys import generate_key
from tests.support.api_calls import bearer
from tests.support.private_services import PrivatePostgres, PrivateRedis
from tests.support.seed import create_keys
from tests.support.server import ServerProcess, cli_json, keyport_env, run_cli, start_all
from tests.support.traffic import Answer, Traffic
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

CACHE_TTL = 3.0  # seconds; shorter than the default 10 so that the test can outlast it
# Clients here are busier than any key may be, and all come from 127.0.0.1 with some bad keys:
# limits are switched off where they are not what is tested.
NO_LIMITS = {"KEYPORT_RATE_LIMIT": "0", "KEYPORT_AUTH_FAILURE_LIMIT": "0"}
UNAVAILABLE = {
    "statusCode": 503,
    "message": "Service Unavailable",
    "error": "Service Unavailable",
}


@pytest.fixture(scope="module")
def postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    try:
        server.start()
        yield server
    finally:
        server.destroy()


def fresh_database(postgres: PrivatePostgres) -> str:
    import subprocess

    name = f"keyport_{uuid.uuid4().hex[:8]}"
    subprocess.run(
        ["psql", postgres.url, "-q", "-c", f'CREATE DATABASE "{name}"'], check=True, timeout=30
    )
    return postgres.url.rsplit("/", 1)[0] + f"/{name}"


def first_at_or_after(answers: list[Answer], moment: float, status: int) -> float | None:
    found = [a.started for a in answers if a.started >= moment and a.status == status]
    return min(found) - moment if found else None


def wait_for_status(server: ServerProcess, path: str, headers: dict[str, str], status: int) -> None:
    import http.client

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        connection.request("GET", path, headers=headers)
        if connection.getresponse().status == status:
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} never answered {status}")


@pytest.mark.parametrize("how", ["fast", "immediate"])
def test_a_database_outage_answers_503_and_service_resumes_by_itself(
    postgres: PrivatePostgres, tmp_path: Path, how: str
) -> None:
    env = keyport_env(fresh_database(postgres), KEYPORT_CACHE_TTL=str(CACHE_TTL), **NO_LIMITS)
    owner_id = cli_json(env, "init", "--company", "Acme", "--owner-email", "o@acme.test")["ownerId"]
    warm, cold, doomed = create_keys(env, 3)
    server = ServerProcess(env, tmp_path / "server.log").start()
    traffic = Traffic()
    try:
        wait_for_status(server, "/v4/user/me", bearer(doomed["key"]), 200)
        run_cli(env, "key", "revoke", doomed["id"])
        wait_for_status(server, "/v4/user/me", bearer(doomed["key"]), 401)  # cached as revoked
        as_owner = {**bearer(warm["key"]), "x-meetergo-api-user-id": owner_id}
        streams = {
            "warm": ("/v4/user/me", bearer(warm["key"])),
            "warm-needs-db": ("/v4/user", as_owner),
            "revoked": ("/v4/user/me", bearer(doomed["key"])),
            "stranger": ("/v4/user/me", bearer(generate_key(uuid.uuid4()))),
            "readyz": ("/readyz", {}),
        }
        for label, (path, headers) in streams.items():
            traffic.stream(label, server.port, path, headers, pause=0.05)
        traffic.wait_for_answers(list(streams), count=3)
        went_down = time.monotonic()
        postgres.stop(how)
        down = time.monotonic()
        # A key this server has never seen: nothing to vouch for it until the database is back.
        traffic.stream("cold", server.port, "/v4/user/me", bearer(cold["key"]), pause=0.05)
        # Down until the cached principal has outlived its TTL and answers 503 too.
        traffic.wait_for_answers(["warm"], started_after=down + CACHE_TTL + 1, status=503)
        traffic.wait_for_answers(["cold", "warm-needs-db", "readyz"], started_after=down + 0.2)
        coming_up = time.monotonic()
        postgres.start()
        up = time.monotonic()
        # Up until every stream has answered a while after recovery (see `settled` below).
        traffic.wait_for_answers([*streams, "cold"], started_after=up + 5, count=3, timeout=60)
    finally:
        answers = traffic.stop()
        exit_code = server.stop()
        postgres.ensure_running()  # for the next test, whatever happened here

    assert exit_code == 0, server.output()
    assert answers and {a.status for a in answers} <= {200, 400, 401, 403, 503}, {
        a.status for a in answers
    }
    for label in ["revoked", "stranger"]:  # zero wrong successes
        wrong = [
            (round(a.started - went_down, 2), a.status, a.body)
            for a in traffic.of(label)
            if a.status not in {401, 503}
        ]
        assert not wrong, (label, wrong[:5])
    outage = [a for a in answers if a.started > down + 0.2 and a.ended < coming_up]
    for a in outage:
        if a.status == 503:
            assert a.headers["retry-after"] == "5"
            if a.label != "readyz":
                assert a.body == UNAVAILABLE
    for label in ["cold", "warm-needs-db", "readyz"]:  # they need the database: all 503
        assert {a.status for a in outage if a.label == label} == {503}, label
    # A principal verified before the outage works from the cache for at most the TTL.
    stale = [a for a in outage if a.label == "warm" and a.status == 200]
    assert all(a.started <= went_down + CACHE_TTL + 0.2 for a in stale)
    assert {a.status for a in outage if a.label == "warm" and a.started > down + CACHE_TTL} == {503}

    recovery = {
        label: first_at_or_after(traffic.of(label), up, 200)
        for label in ["cold", "warm", "warm-needs-db", "readyz"]
    }
    print(f"\ndatabase {how} stop: first 200 after PostgreSQL was back (s): {recovery}")
    assert all(seconds is not None and seconds < 5 for seconds in recovery.values()), recovery
    settled = [a for a in answers if a.started > up + 5]
    assert {a.status for a in settled if a.label in {"cold", "warm", "readyz"}} == {200}


def burst(servers: list[ServerProcess], key: str, count: int) -> dict[int, list[int]]:
    """`count` requests with one key, alternating between the servers; statuses per port."""
    import http.client

    statuses: dict[int, list[int]] = {s.port: [] for s in servers}
    connections = {
        s.port: http.client.HTTPConnection("127.0.0.1", s.port, timeout=10) for s in servers
    }
    for n in range(count):
        port = servers[n % len(servers)].port
        connections[port].request("GET", "/v4/user/me", headers=bearer(key))
        response = connections[port].getresponse()
        response.read()
        statuses[port].append(response.status)
    return statuses


def accepted(statuses: dict[int, list[int]]) -> list[int]:
    for answers in statuses.values():
        assert set(answers) <= {200, 429}, answers
    return [answers.count(200) for answers in statuses.values()]


def said(server: ServerProcess, line: str) -> bool:
    return line in server.output()


def limits_shared_again(server: ServerProcess, key: str) -> bool:
    """One request through the limiter, then whether it said it reached Redis again."""
    burst([server], key, 1)
    return "shared rate-limit store reachable again" in server.output()


def readiness(server: ServerProcess) -> tuple[int, object]:
    import http.client
    import json

    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("GET", "/readyz")
    response = connection.getresponse()
    return response.status, json.loads(response.read())


def test_a_redis_outage_falls_back_to_each_process_and_heals_by_itself(
    postgres: PrivatePostgres, redis: PrivateRedis, tmp_path: Path
) -> None:
    env = keyport_env(
        fresh_database(postgres), KEYPORT_REDIS_URL=redis.url, KEYPORT_AUTH_FAILURE_LIMIT="0"
    )
    run_cli(env, "init", "--company", "Acme", "--owner-email", "o@acme.test")
    doomed, probe = create_keys(env, 2, rate_limit=1000000)
    limited = [issued["key"] for issued in create_keys(env, 3, rate_limit=30)]  # bursts to 60
    servers = start_all([ServerProcess(env, tmp_path / f"server-{n}.log") for n in range(2)])
    traffic = Traffic()
    try:
        # Redis up: one bucket for both processes.
        assert 60 <= sum(accepted(burst(servers, limited[0], 100))) <= 62

        redis.stop()
        # Redis down: each process limits on its own, and nothing fails.
        per_process = accepted(burst(servers, limited[1], 200))
        assert all(60 <= n <= 62 for n in per_process), per_process
        assert readiness(servers[0]) == (
            200,
            {"status": "ok", "database": "ok", "redis": "unreachable"},
        )
        # A revocation still reaches both processes, through the database's invalidation log.
        streams = [f"doomed-{n}" for n in range(len(servers))]
        for label, server in zip(streams, servers, strict=True):
            traffic.stream(label, server.port, "/v4/user/me", bearer(doomed["key"]))
        traffic.wait_for_answers(streams, status=200)
        run_cli(env, "key", "revoke", doomed["id"])
        revoked = time.monotonic()
        traffic.wait_for_answers(streams, started_after=revoked + 1.2, status=401)
        answers = traffic.stop()

        redis.start()
        back = time.monotonic()
        while readiness(servers[1])[1] != {"status": "ok", "database": "ok", "redis": "ok"}:
            assert time.monotonic() - back < 10, "readiness never saw Redis again"
            time.sleep(0.05)
        seen_again = time.monotonic() - back
        # The rate limiter tries Redis again at most a second after a failure, the subscriber
        # reconnects every second: until both have.
        for server in servers:
            wait_until(
                partial(limits_shared_again, server, probe["key"]),
                "the rate limiter using Redis again",
            )
            wait_until(
                partial(said, server, "redis-subscribe connected again"),
                "the invalidation subscriber connected again",
            )
        # Redis back: one bucket again.
        assert 60 <= sum(accepted(burst(servers, limited[2], 100))) <= 62
    finally:
        traffic.stop()
        exit_codes = [server.stop() for server in servers]

    assert exit_codes == [0, 0]
    assert {a.status for a in answers} <= {200, 401}
    lag = [a.started - revoked for a in answers if a.status == 200 and a.started > revoked]
    print(
        f"\nredis down: last success after the revocation returned: {max(lag, default=0):.3f}s; "
        f"readiness saw Redis again after {seen_again:.3f}s"
    )
    assert max(lag, default=0.0) < 1.0  # everywhere within one second, Redis or not
    assert all(a.status == 401 for a in answers if a.started > revoked + 1.0)
    for server in servers:
        output = server.output()
        assert output.count("shared rate-limit store unreachable") == 1, output
        assert output.count("shared rate-limit store reachable again") == 1, output
        assert output.count("redis-subscribe lost") == 1, output
        assert output.count("redis-subscribe connected again") == 1, output
