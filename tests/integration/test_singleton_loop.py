"""One process at a time: SingletonLoop over the database lease, on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from keyport.bootstrap import Container
from keyport.db.leases import SqlLeaseStore
from keyport.domain.clock import FixedClock
from keyport.services.runtime.singleton_loop import SingletonLoop


def _loop(container: Container, clock: FixedClock, runs: list[str], name: str) -> SingletonLoop:
    async def work() -> None:
        runs.append(name)

    return SingletonLoop(
        "test-loop", work, SqlLeaseStore(container.engine), clock.now, interval=1, ttl=30
    )


async def test_only_the_holder_runs_and_renews(container: Container, clock: FixedClock) -> None:
    runs: list[str] = []
    first, second = _loop(container, clock, runs, "a"), _loop(container, clock, runs, "b")

    assert await first.tick() is True
    assert await second.tick() is False
    clock.advance(timedelta(seconds=20))
    assert await first.tick() is True  # renewed: 20 s later it still holds
    clock.advance(timedelta(seconds=20))
    assert await second.tick() is False  # 40 s after the first take, but renewed at 20 s
    assert runs == ["a", "a"]


async def test_a_crashed_holder_is_taken_over_after_the_lease_runs_out(
    container: Container, clock: FixedClock
) -> None:
    runs: list[str] = []
    crashed, survivor = _loop(container, clock, runs, "a"), _loop(container, clock, runs, "b")
    assert await crashed.tick() is True

    clock.advance(timedelta(seconds=29))
    assert await survivor.tick() is False
    clock.advance(timedelta(seconds=2))
    assert await survivor.tick() is True
    assert await crashed.tick() is False  # it came back: the lease is no longer its
    assert runs == ["a", "b"]


async def test_a_clean_stop_hands_over_at_once(container: Container, clock: FixedClock) -> None:
    runs: list[str] = []
    leaving, next_one = _loop(container, clock, runs, "a"), _loop(container, clock, runs, "b")
    assert await leaving.tick() is True
    await leaving.stop()
    assert await next_one.tick() is True
    assert runs == ["a", "b"]


class _DownLeases:
    """A lease store whose database is down until `up` is set."""

    def __init__(self) -> None:
        self.up = False

    async def acquire(self, *_args: object) -> bool:
        if not self.up:
            raise ConnectionRefusedError(111, "Connection refused")
        return True

    async def release(self, *_args: object) -> None:
        pass


async def test_a_lease_that_cannot_be_taken_is_told_once_per_outage(
    clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    leases = _DownLeases()
    runs: list[str] = []

    async def work() -> None:
        runs.append("ran")

    loop = SingletonLoop("test-loop", work, leases, clock.now, interval=1, ttl=30)
    with caplog.at_level(logging.WARNING, logger="keyport.services.runtime.singleton_loop"):
        for _ in range(5):
            assert await loop.tick() is False
        leases.up = True
        assert await loop.tick() is True

    assert [r.getMessage() for r in caplog.records] == [
        "lease test-loop could not be taken",
        "lease test-loop can be taken again",
    ]
    assert runs == ["ran"]
