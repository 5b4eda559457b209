"""The token bucket: bursts, refill, the numbers clients are told, and the bound it keeps."""

from __future__ import annotations

import logging
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyport.domain.rate_limits import Policy, take, whole_seconds
from keyport.services.access.rate_limits import FailoverBuckets, MemoryBuckets, SharedStoreHealth

DEFAULT = Policy(100, 200)


class Ticker:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_a_full_bucket_lets_the_burst_through_then_one_request_per_refill() -> None:
    tick = Ticker()
    buckets = MemoryBuckets(tick)
    assert all(buckets.take_now("k", DEFAULT).allowed for _ in range(200))
    refused = buckets.take_now("k", DEFAULT)
    assert (refused.allowed, refused.remaining, refused.limit) == (False, 0, 200)
    assert whole_seconds(refused.retry_after) == 1 and math.ceil(refused.reset) == 120
    tick.now += 0.6
    assert buckets.take_now("k", DEFAULT).allowed
    assert not buckets.take_now("k", DEFAULT).allowed


def test_a_lowered_limit_applies_to_a_bucket_that_was_fuller() -> None:
    buckets = MemoryBuckets(Ticker())
    buckets.take_now("k", DEFAULT)
    smaller = DEFAULT.scaled_to(10)
    assert smaller == Policy(10, 20)
    decision = buckets.take_now("k", smaller)
    assert (decision.allowed, decision.remaining, decision.limit) == (True, 19, 20)


def test_policies_refuse_nonsense() -> None:
    for rate, burst in [(0, 1), (1, 0), (1_000_001, 5)]:
        with pytest.raises(ValueError):
            Policy(rate, burst)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=5, allow_nan=False), max_size=400))
def test_no_interval_lets_more_through_than_the_burst_plus_the_refill(gaps: list[float]) -> None:
    """Over any stretch of T seconds at most burst + rate * T requests pass."""
    policy = Policy(60, 10)  # one a second, bursts to ten
    tokens, passed_at, now = float(policy.burst), [], 0.0
    for gap in gaps:
        now += gap
        decision = take(policy, tokens, gap)
        tokens = decision.tokens
        if decision.allowed:
            passed_at.append(now)
    for i, start in enumerate(passed_at):
        for j in range(i, len(passed_at)):
            span = passed_at[j] - start
            assert j - i + 1 <= policy.burst + span * policy.per_second + 1e-6 * (j - i + 1)


class BrokenStore:
    def __init__(self) -> None:
        self.calls = 0

    async def take(self, key: str, policy: Policy) -> object:
        self.calls += 1
        raise ConnectionError("Redis is down")


async def test_failover_uses_local_buckets_and_retries_the_shared_store_each_second() -> None:
    tick = Ticker()
    shared = BrokenStore()
    failover = FailoverBuckets(shared, MemoryBuckets(tick), monotonic=tick)  # type: ignore[arg-type]
    assert (await failover.take("k", DEFAULT)).allowed and not failover.is_shared
    for _ in range(10):
        await failover.take("k", DEFAULT)
    assert shared.calls == 1
    tick.now += 1.0
    await failover.take("k", DEFAULT)
    assert shared.calls == 2


async def test_two_failovers_on_one_store_report_one_outage_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tick = Ticker()
    health = SharedStoreHealth(monotonic=tick)
    local = MemoryBuckets(tick)
    exact = FailoverBuckets(BrokenStore(), local, health=health)  # type: ignore[arg-type]
    leased = FailoverBuckets(BrokenStore(), local, health=health)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="keyport.services.access.rate_limits"):
        await exact.take("fail:ip", DEFAULT)
        await leased.take("key:k", DEFAULT)
        tick.now += 1.0
        await leased.take("key:k", DEFAULT)
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == [
        "shared rate-limit store unreachable: limiting per process until it is back"
    ]
    assert not exact.is_shared and not leased.is_shared
    # While skipping the shared store, decisions are made here without a coroutine.
    assert leased.take_now("key:k", DEFAULT) is not None
