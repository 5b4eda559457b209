"""Leased per-key budgets: few asks for a busy key far from its limit, one token at a time
near it, never more through than the shared bucket allows, refusals remembered truthfully."""

from __future__ import annotations

import asyncio
import math
import random

from keyport.domain.rate_limits import Policy
from keyport.redis.leases import LEASE_FRACTION
from keyport.services.access.token_leases import (
    KEEP_FILL,
    LEASE_SECONDS,
    MAX_GROWTH,
    MAX_LEASE,
    MAX_LEASE_AGE,
    LeasedBuckets,
)

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
    for _ in range(12):
        await leases.take("k", WIDE)
    assert len(shared.asks) == 1  # one generous first lease
    unspent = sum(want for want, _ in shared.asks) - 12
    assert unspent > 0
    clock.now += MAX_LEASE_AGE + 0.01
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
    policy = Policy(60, 1000)  # a token a second: a first lease of five
    for _ in range(4):
        await leases.take("k", policy)
    assert shared.asks == [(5, 0)]  # one left
    await leases.give_back("k", policy)
    for _ in range(2):
        assert leases.take_now("k", policy) is not None
    assert leases.take_now("k", policy) is None  # now it must ask


async def test_a_first_lease_asks_for_one_lifetime_of_the_rate_within_an_eighth_of_the_bucket() -> (
    None
):
    _, shared, leases = setup()
    await leases.take("a", Policy(60, 1000))  # 1 a second: 5 in a lifetime
    await leases.take("b", Policy(6000, 100))  # 100 a second, but 1/8 of 100 is 12
    await leases.take("c", Policy(1, 2))  # less than one token in a lifetime: still one
    await leases.take("d", WIDE)  # 83,334 in a lifetime: MAX_LEASE
    assert [want for want, _ in shared.asks] == [5, 12, 1, MAX_LEASE]


async def test_later_leases_follow_the_demand_seen_in_the_last_one() -> None:
    clock, shared, leases = setup()
    policy = Policy(60_000, 60_000)  # 1,000 a second; the first lease, 5,000, is an 8th
    for _ in range(10):  # 2 a second: 10 spent of the first lease (5,000) in its lifetime
        clock.now += 0.5
        await leases.take("k", policy)
    clock.now += 0.51
    await leases.take("k", policy)  # expired: 10 spent per lifetime, a quarter more
    assert shared.asks[0] == (5_000, 0)
    assert shared.asks[1] == (13, 4_990)
    for _ in range(13):  # 13 spent at once: MAX_GROWTH times the grant at most
        clock.now += 0.001
        await leases.take("k", policy)
    assert shared.asks[2][0] == MAX_GROWTH * (13 + 1)
    assert len(shared.asks) == 3


async def test_an_ask_never_wants_more_than_an_eighth_of_the_estimated_bucket() -> None:
    clock, shared, leases = setup()
    policy = Policy(600, 400)  # 10 a second: first lease 50 of 400
    for _ in range(50):
        await leases.take("k", policy)  # spent at once: demand would be 8 times as much
    await leases.take("k", policy)
    assert shared.asks[1][0] == 350 // LEASE_FRACTION  # 350 left in the bucket
    clock.now += 3.0  # 30 back
    for _ in range(shared.asks[1][0] - 1):
        await leases.take("k", policy)
    await leases.take("k", policy)
    assert shared.asks[2][0] == (350 - 43 + 30) // LEASE_FRACTION


async def test_a_refused_key_asks_for_one_token_when_the_next_is_due() -> None:
    clock, shared, leases = setup()
    policy = Policy(60, 8)
    while (await leases.take("k", policy)).allowed:
        clock.now += 0.001
    clock.now += 1.0
    assert (await leases.take("k", policy)).allowed
    assert shared.asks[-1][0] == 1


async def test_a_lease_far_from_the_bucket_lives_on_after_expiry_up_to_its_maximum_age() -> None:
    clock, shared, leases = setup()
    policy = Policy(6_000, 10_000)  # first lease 500: the bucket keeps 9,500, more than 16x
    assert (await leases.take("k", policy)).allowed
    step = 2.5  # a request every 2.5 s: each extension (5 s) ends where the next one starts
    spent = int(MAX_LEASE_AGE / step)  # the first request, then one every step: no ask meanwhile
    for _ in range(spent - 1):
        clock.now += step
        assert leases.take_now("k", policy) is not None
    assert len(shared.asks) == 1
    clock.now += step  # MAX_LEASE_AGE: it asks, giving back what is left
    assert leases.take_now("k", policy) is None
    await leases.take("k", policy)
    assert shared.asks[1][1] == 500 - spent
    # what it spent in MAX_LEASE_AGE: the next lease is sized for that long again, with headroom
    assert shared.asks[1][0] == math.ceil(spent * 1.25)


async def test_a_lease_near_the_bucket_expires_after_its_lifetime() -> None:
    clock, shared, leases = setup()
    policy = Policy(600, 80)  # first lease 10 of 80: the bucket keeps 70, not 16 x 10
    await leases.take("k", policy)
    assert shared.asks == [(10, 0)]
    assert KEEP_FILL * 10 > 70
    clock.now += LEASE_SECONDS
    assert leases.take_now("k", policy) is None  # it must ask, giving back its 9
    await leases.take("k", policy)
    assert shared.asks[1][1] == 9
