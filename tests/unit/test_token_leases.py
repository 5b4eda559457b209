"""Leased per-key budgets: few asks for a busy key far from its limit, one token at a time
near it, never more through than the shared bucket allows, refusals remembered truthfully."""

from __future__ import annotations

import asyncio
import math
import random

from keyport.domain.rate_limits import Policy
from keyport.redis.leases import LEASE_FRACTION
from keyport.services.access.token_leases import LEASE_SECONDS, LeasedBuckets

DEFAULT = Policy(100, 200)
WIDE = Policy(1_000_000, 1_000_000)


class Ticker:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class SharedBucket:
    """The Lua script of redis/leases.py, in Python, on a clock the test moves
    (tests/integration/test_rate_limits_redis.py runs the real one)."""

    def __init__(self, clock: Ticker) -> None:
        self._clock = clock
        self._state: dict[str, tuple[float, float]] = {}
        self.asks: list[tuple[int, int]] = []  # (want, give back)
        self.in_flight = 0
        self.most_in_flight = 0

    async def lease(self, key: str, policy: Policy, want: int, give_back: int) -> tuple[int, float]:
        self.asks.append((want, give_back))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await asyncio.sleep(0)  # a round trip: other requests run meanwhile
        self.in_flight -= 1
        now = self._clock.now
        tokens, at = self._state.get(key, (float(policy.burst), now))
        tokens = min(policy.burst, tokens + max(0.0, now - at) * policy.per_second)
        tokens = min(policy.burst, tokens + give_back)
        granted = 0
        if tokens >= 1 - 1e-6:
            granted = min(want, math.floor(tokens / LEASE_FRACTION))
            granted = max(1, min(granted, math.floor(tokens + 1e-6)))
            tokens = max(0.0, tokens - granted)
        self._state[key] = (tokens, now)
        return granted, tokens


def setup() -> tuple[Ticker, SharedBucket, LeasedBuckets]:
    clock = Ticker()
    shared = SharedBucket(clock)
    return clock, shared, LeasedBuckets(shared, monotonic=clock)


async def test_a_busy_key_far_from_its_limit_asks_the_store_rarely() -> None:
    clock, shared, leases = setup()
    for _ in range(20_000):
        clock.now += 0.0001  # 10,000 requests a second
        assert (await leases.take("k", WIDE)).allowed
    assert len(shared.asks) <= 20, len(shared.asks)
    assert sum(1 for _ in range(1000) if leases.take_now("k", WIDE) is not None) >= 999


async def test_concurrent_requests_wait_for_one_ask_instead_of_asking_each() -> None:
    _, shared, leases = setup()
    decisions = await asyncio.gather(*(leases.take("k", WIDE) for _ in range(200)))
    assert all(d.allowed for d in decisions)
    assert shared.most_in_flight == 1
    assert len(shared.asks) <= 10, shared.asks  # lease sizes double: 1, 2, 4, ...


async def test_near_the_limit_tokens_are_leased_one_at_a_time_and_exactly() -> None:
    clock, shared, leases = setup()
    passed = sum([(await leases.take("k", DEFAULT)).allowed for _ in range(300)])
    assert passed == 200  # the burst, no more
    assert max(want for want, _ in shared.asks) <= 200 // LEASE_FRACTION * 2
    clock.now += 6.0  # ten tokens back
    passed = sum([(await leases.take("k", DEFAULT)).allowed for _ in range(50)])
    assert passed == 10


async def test_a_refusal_is_remembered_until_the_next_token_and_says_so() -> None:
    clock, shared, leases = setup()
    while (await leases.take("k", DEFAULT)).allowed:
        pass
    asks = len(shared.asks)
    refused = await leases.take("k", DEFAULT)
    assert not refused.allowed and refused.remaining == 0
    assert 0.5 < refused.retry_after <= 0.6 + 1e-9  # a token every 0.6 s
    assert len(shared.asks) == asks  # answered here, not by the store
    clock.now += refused.retry_after
    assert (await leases.take("k", DEFAULT)).allowed
    assert len(shared.asks) == asks + 1


async def test_an_expired_lease_gives_its_unspent_tokens_back_in_the_next_ask() -> None:
    clock, shared, leases = setup()
    for _ in range(12):  # lease sizes 1, 2, 4, 8: the last is not spent
        await leases.take("k", WIDE)
    unspent = sum(want for want, _ in shared.asks) - 12
    assert unspent == 3
    assert unspent > 0
    clock.now += LEASE_SECONDS + 0.01
    decision = await leases.take("k", WIDE)
    assert decision.allowed
    assert shared.asks[-1][1] == unspent
    assert decision.remaining <= WIDE.burst


async def test_a_changed_limit_starts_a_new_lease() -> None:
    _, _, leases = setup()
    await leases.take("k", WIDE)
    lowered = Policy(10, 20)
    decision = await leases.take("k", lowered)
    assert decision.limit == 20 and decision.remaining <= 20
    assert leases.take_now("k", WIDE) is None  # the old lease is gone


async def test_four_processes_at_ten_times_the_limit_never_pass_more_than_the_bucket() -> None:
    clock = Ticker()
    shared = SharedBucket(clock)
    processes = [LeasedBuckets(shared, monotonic=clock) for _ in range(4)]
    rng = random.Random(7)
    policy = Policy(600, 100)  # 10 a second, bursts to 100
    start, passed, step = clock.now, 0, 1 / (10 * policy.per_second)
    while clock.now - start < 20:
        clock.now += step * rng.random() * 2
        passed += (await rng.choice(processes).take("k", policy)).allowed
    allowance = policy.burst + policy.per_second * (clock.now - start)
    assert 0.95 * allowance <= passed <= allowance


async def test_a_token_given_back_is_spent_again_from_the_lease() -> None:
    _, shared, leases = setup()
    for _ in range(4):  # leases of 1 and 2, then 4: three of them left
        await leases.take("k", WIDE)
    asks = len(shared.asks)
    await leases.give_back("k", WIDE)
    for _ in range(4):
        assert leases.take_now("k", WIDE) is not None
    assert len(shared.asks) == asks
    assert leases.take_now("k", WIDE) is None  # now it must ask
