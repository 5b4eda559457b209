"""Where rate-limit buckets live, and the per-key limit the request path applies.

- `MemoryBuckets`: this process's own buckets; a dict lookup and a few float operations.
- A shared store (Redis, `keyport.redis.buckets`) that every process uses, so N processes
  enforce one limit, not N.
- Leases of the shared store's tokens (`keyport.services.access.token_leases`), spent in this
process: the
  per-key budget shared without a round trip per request.
- `FailoverBuckets`: the shared store while it answers, this process's buckets while it does
  not. Its `SharedStoreHealth` says so once when the shared store fails, once when it is
  back, and tries it again every `retry_every` seconds in between; one health is shared by
  every failover on the same store, so an outage is reported once.

`take_now` is the request path's way: a decision without a coroutine when one can be made
without I/O, else None and the caller awaits `take`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

from keyport.domain import rate_limits as rules
from keyport.domain.principal import Principal
from keyport.domain.rate_limits import Decision, Policy

logger = logging.getLogger(__name__)


class BucketStore(Protocol):
    """Every limit's buckets. `take` is atomic: a reservation, made before the work it pays for."""

    async def take(self, key: str, policy: Policy) -> Decision:
        """Take one token from the bucket `key` (made full on first use)."""
        ...

    def take_now(self, key: str, policy: Policy) -> Decision | None:
        """`take` when it needs no I/O; None when only `take` can answer."""
        ...

    async def give_back(self, key: str, policy: Policy) -> None:
        """Return one token taken from `key` (never above the burst)."""
        ...


class MemoryBuckets:
    """Buckets in this process: right for one process, or one limit per process."""

    def __init__(self, now: Callable[[], float], *, max_entries: int = 200_000) -> None:
        self._now = now
        self._max_entries = max_entries
        self._buckets: dict[str, tuple[float, float, Policy]] = {}  # key → tokens, when, policy

    def take_now(self, key: str, policy: Policy) -> Decision:
        now = self._now()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._max_entries:
                self._forget_full(now)
            decision = rules.take(policy, float(policy.burst), 0.0)
        else:
            decision = rules.take(policy, bucket[0], now - bucket[1])
        self._buckets[key] = (decision.tokens, now, policy)
        return decision

    async def take(self, key: str, policy: Policy) -> Decision:
        return self.take_now(key, policy)

    async def give_back(self, key: str, policy: Policy) -> None:
        bucket = self._buckets.get(key)
        if bucket is not None:  # no bucket: it is full, nothing to give back
            now = self._now()
            self._buckets[key] = (rules.give_back(policy, bucket[0], now - bucket[1]), now, policy)

    def _forget_full(self, now: float) -> None:
        # A full bucket holds nothing worth keeping: a new one starts full too.
        self._buckets = {
            key: (tokens, when, policy)
            for key, (tokens, when, policy) in self._buckets.items()
            if tokens + (now - when) * policy.per_second < policy.burst
        }
        if len(self._buckets) >= self._max_entries:
            logger.warning("rate-limit table full: forgetting every bucket")
            self._buckets.clear()


class SharedStoreHealth:
    """Whether the shared store answers, as the failovers using it found out."""

    def __init__(
        self, *, retry_every: float = 1.0, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._retry_every = retry_every
        self._monotonic = monotonic
        self._retry_at: float | None = None  # set while the shared store is failing

    @property
    def is_shared(self) -> bool:
        return self._retry_at is None

    def should_skip(self) -> bool:
        """True while failing and not yet time to try the shared store again."""
        return self._retry_at is not None and self._monotonic() < self._retry_at

    def failed(self) -> None:
        if self._retry_at is None:
            logger.warning(
                "shared rate-limit store unreachable: limiting per process until it is back",
                exc_info=True,
            )
        self._retry_at = self._monotonic() + self._retry_every

    def answered(self) -> None:
        if self._retry_at is not None:
            logger.warning("shared rate-limit store reachable again: limits are shared")
            self._retry_at = None


class FailoverBuckets:
    def __init__(
        self,
        shared: BucketStore,
        local: MemoryBuckets,
        *,
        health: SharedStoreHealth | None = None,
        retry_every: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._shared = shared
        self._local = local
        self._health = health or SharedStoreHealth(retry_every=retry_every, monotonic=monotonic)

    @property
    def is_shared(self) -> bool:
        """False while the shared store is failing and this process limits on its own."""
        return self._health.is_shared

    def take_now(self, key: str, policy: Policy) -> Decision | None:
        if self._health.should_skip():
            return self._local.take_now(key, policy)
        return self._shared.take_now(key, policy)

    async def take(self, key: str, policy: Policy) -> Decision:
        if self._health.should_skip():
            return self._local.take_now(key, policy)
        try:
            decision = await self._shared.take(key, policy)
        except Exception:
            self._health.failed()
            return self._local.take_now(key, policy)
        self._health.answered()
        return decision

    async def give_back(self, key: str, policy: Policy) -> None:
        if self._health.should_skip():
            await self._local.give_back(key, policy)
            return
        try:
            await self._shared.give_back(key, policy)
        except Exception:
            # Not given back: the worst outcome is one reservation too many, until it refills.
            self._health.failed()
            await self._local.give_back(key, policy)


class KeyRateLimiter:
    """Each key's budget: the default policy, or the key's own rate with the same burst ratio."""

    def __init__(self, store: BucketStore, default: Policy | None) -> None:
        self._store = store
        self._default = default
        self._policies: dict[int, Policy] = {}

    def policy_for(self, principal: Principal) -> Policy | None:
        """None when the key has no limit (limits are off and it has no rate of its own)."""
        own = principal.rate_limit
        if own is None:
            return self._default
        policy = self._policies.get(own)
        if policy is None:
            shape = self._default or Policy(1, rules.DEFAULT_BURST_FACTOR)
            policy = self._policies[own] = shape.scaled_to(own)
        return policy

    def take_now(self, principal: Principal, policy: Policy) -> Decision | None:
        """The key's decision when it needs no I/O (the request path's way), else None."""
        return self._store.take_now("key:" + principal.key_id, policy)

    async def take(self, principal: Principal, policy: Policy) -> Decision:
        return await self._store.take("key:" + principal.key_id, policy)
