"""The one background loop: steps repeat, failures are told once per outage, stop is clean."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from keyport.services.runtime.periodic import PeriodicTask


async def _until(condition: object, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met before the deadline"
        await asyncio.sleep(0.005)


async def test_the_step_runs_again_and_again_until_stopped() -> None:
    runs: list[float] = []

    async def step() -> None:
        runs.append(time.monotonic())

    loop = PeriodicTask("counter", step, interval=0.01)
    await loop.start()
    await _until(lambda: len(runs) >= 3)
    await loop.stop()
    stopped_at = len(runs)
    await asyncio.sleep(0.05)
    assert len(runs) == stopped_at


async def test_a_failing_step_is_told_once_per_outage_and_its_recovery_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outcomes = iter([False, False, False, True, True, False, True])
    done = asyncio.Event()

    async def step() -> None:
        ok = next(outcomes, None)
        if ok is None:
            done.set()
            return
        if not ok:
            raise ConnectionError("down")

    loop = PeriodicTask(
        "feed", step, interval=0.001, failure_message="feed down", recovery_message="feed back"
    )
    with caplog.at_level(logging.WARNING, logger="keyport.services.runtime.periodic"):
        await loop.start()
        await asyncio.wait_for(done.wait(), timeout=5)
        await loop.stop()
    messages = [record.getMessage() for record in caplog.records]
    assert messages == ["feed down", "feed back", "feed down", "feed back"]
    assert loop.healthy


async def test_a_graceful_stop_lets_the_step_in_progress_finish() -> None:
    started, finished = asyncio.Event(), asyncio.Event()

    async def slow_step() -> None:
        started.set()
        await asyncio.sleep(0.1)
        finished.set()

    loop = PeriodicTask("flush", slow_step, interval=0.001, graceful=True)
    await loop.start()
    await asyncio.wait_for(started.wait(), timeout=5)
    await loop.stop()
    assert finished.is_set()


async def test_a_plain_stop_cancels_the_step_in_progress() -> None:
    started, finished = asyncio.Event(), asyncio.Event()

    async def endless() -> None:
        started.set()
        await asyncio.sleep(60)
        finished.set()

    loop = PeriodicTask("listen", endless, interval=0.001)
    await loop.start()
    await asyncio.wait_for(started.wait(), timeout=5)
    await asyncio.wait_for(loop.stop(), timeout=5)
    assert not finished.is_set()


async def test_wait_first_waits_one_interval_and_a_stop_during_it_skips_the_step() -> None:
    runs: list[int] = []

    async def step() -> None:
        runs.append(1)

    loop = PeriodicTask("late", step, interval=60, wait_first=True, graceful=True)
    await loop.start()
    await asyncio.sleep(0.05)
    await asyncio.wait_for(loop.stop(), timeout=5)
    assert runs == []
