"""Webhook delivery by served processes: each event once across two processes, and events
left undelivered by a stopped process delivered after a restart."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from standardwebhooks import Webhook

from keyport.bootstrap import build_container
from keyport.config import Settings
from keyport.db.tables import webhook_deliveries
from keyport.domain.audit import Actor
from tests.support import databases
from tests.support.receiver import Receiver, webhook_receiver
from tests.support.seed import add_webhook, init_company
from tests.support.server import ServerProcess, keyport_env, start_all

EVENTS = 12


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'hooks.db'}"
        return
    url = databases.run_blocking(databases.create_postgres_database())
    try:
        yield url
    finally:
        databases.run_blocking(databases.drop_postgres_database(url))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as running:
        yield running


# The crashed-holder test waits out the worker's lease: shorter than the 30 s default, still
# many times the poll interval and far longer than a tick sending to the local receiver.
SHORT_LEASE = 6.0


def _env(database: str, **extra: str) -> dict[str, str]:
    return keyport_env(
        database,
        KEYPORT_WEBHOOK_ALLOW_PRIVATE="true",
        KEYPORT_WEBHOOK_POLL_INTERVAL="0.2",
        KEYPORT_REQUEST_LOG="false",
        **extra,
    )


def _setup(env: dict[str, str], receiver: Receiver) -> tuple[str, str]:
    company = init_company(env, "Acme", "o@acme.test")
    added = add_webhook(env, receiver.url, ["api_key.created"])
    return company["companyId"], added["secret"]


def _issue_keys(database: str, company_id: str, count: int) -> set[str]:
    async def work() -> set[str]:
        container = build_container(Settings(database_url=database))
        try:
            ids = set()
            for n in range(count):
                issued = await container.keys.issue_key(
                    company_id, name=f"k{n}", days=5, actor=Actor.cli()
                )
                ids.add(issued.record.id)
            return ids
        finally:
            await container.close()

    return databases.run_blocking(work())


def _attempts(database: str) -> list[tuple[str, int]]:
    async def work() -> list[tuple[str, int]]:
        container = build_container(Settings(database_url=database))
        try:
            async with container.engine.connect() as connection:
                result = await connection.execute(
                    select(webhook_deliveries.c.status, webhook_deliveries.c.attempts)
                )
                return [(r.status, r.attempts) for r in result]
        finally:
            await container.close()

    return databases.run_blocking(work())


def _wait_all_delivered(database: str, count: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = _attempts(database)
        if len(rows) == count and all(status == "delivered" for status, _ in rows):
            return
        time.sleep(0.2)
    raise AssertionError(f"not all delivered: {_attempts(database)}")


def test_two_processes_deliver_each_event_once(
    database: str, receiver: Receiver, tmp_path: Path
) -> None:
    env = _env(database)
    company_id, secret = _setup(env, receiver)
    servers = start_all([ServerProcess(env, tmp_path / f"server{n}.log") for n in range(2)])
    try:
        key_ids = _issue_keys(database, company_id, EVENTS)
        _wait_all_delivered(database, EVENTS)
        got = receiver.wait_for(EVENTS)
    finally:
        for server in servers:
            server.stop()
    # Every delivery was attempted once: had both processes sent one, it would count two.
    assert _attempts(database) == [("delivered", 1)] * EVENTS
    assert len(got) == EVENTS
    assert len({r.headers["webhook-id"] for r in got}) == EVENTS
    verified = [Webhook(secret).verify(r.body, r.headers) for r in got]
    assert {v["data"]["id"] for v in verified} == key_ids
    for server in servers:
        assert secret not in server.output()


def test_events_left_by_a_stopped_process_are_delivered_after_a_restart(
    database: str, receiver: Receiver, tmp_path: Path
) -> None:
    env = _env(database)
    company_id, _secret = _setup(env, receiver)
    key_ids = _issue_keys(database, company_id, 3)  # no process runs: they wait in the outbox
    assert receiver.requests == []
    server = ServerProcess(env, tmp_path / "server.log").start()
    try:
        got = receiver.wait_for(3)
    finally:
        server.stop()
    assert {json.loads(r.body)["data"]["id"] for r in got} == key_ids


def test_a_crashed_holder_hands_delivery_over(
    database: str, receiver: Receiver, tmp_path: Path
) -> None:
    """The first process is killed (SIGKILL, no clean release); the second takes over once
    the lease has run out and delivers what was queued since."""
    env = _env(database, KEYPORT_WEBHOOK_LEASE_SECONDS=str(SHORT_LEASE))
    company_id, _secret = _setup(env, receiver)
    first, second = start_all(
        [ServerProcess(env, tmp_path / "first.log"), ServerProcess(env, tmp_path / "second.log")]
    )
    try:
        first_ids = _issue_keys(database, company_id, 1)
        receiver.wait_for(1)
        _wait_all_delivered(database, 1)  # recorded: a kill now cannot make it resend
        for server in (first, second):
            assert server.process is not None
        # Kill both hard, then start one again: the lease of a crashed holder runs out.
        first.process.kill()  # type: ignore[union-attr]
        second.process.kill()  # type: ignore[union-attr]
        first.process.wait(10)  # type: ignore[union-attr]
        second.process.wait(10)  # type: ignore[union-attr]
        later = _issue_keys(database, company_id, 2)
        third = ServerProcess(env, tmp_path / "third.log").start()
        try:
            receiver.wait_for(3, timeout=60)
            _wait_all_delivered(database, 3, timeout=60)
        finally:
            third.stop()
    finally:
        first.stop()
        second.stop()
    # At least once: a resend would carry the same webhook-id; none was needed here.
    by_id = {r.headers["webhook-id"]: json.loads(r.body)["data"]["id"] for r in receiver.requests}
    assert sorted(by_id.values()) == sorted(first_ids | later)
    assert len(receiver.requests) == 3
