"""Per-key budgets shared through a store (Redis) without a round trip per request.

Each process leases tokens from the key's shared bucket and spends them locally:

- A request spends a leased token with no I/O. When the lease is spent or has expired
  (LEASE_SECONDS), the next request asks the store once for a new one, handing back the
  expired lease's unspent tokens in the same call; requests for that key arriving meanwhile
  wait for that one call (one ask per key per process at a time).
- Lease sizes follow the key's policy and its demand. A key's first lease asks for what the
  key may spend in one lease lifetime (its rate times LEASE_SECONDS); each later ask for what
  the key spent per lifetime in its last lease, with a quarter more (a lease spent early
  shows a higher rate, up to eight times the last grant). An ask never wants more than a
  LEASE_FRACTION of what the bucket is estimated to hold (its fill at the last ask plus the
  refill since), and the store never grants more than that fraction of what it holds
  (redis/leases.py): a key near its limit is leased one token at a time, exactly, at one
  round trip per request.
- A lease expires after LEASE_SECONDS, except one granted while the bucket was far from
  empty (it held at least KEEP_FILL times the grant after it): its unspent tokens are a small
  share of what the others can take, so it lives on with no ask, up to MAX_LEASE_AGE. A key a
  process sees every few seconds, far from its limit, then asks about once a minute; later
  asks for it size by its demand over that longer life.
- A refusal is remembered: the store said when its next token will be there, and until then
  this process refuses the key locally (no other process can make tokens appear sooner).

Tokens are taken from the shared bucket before they are spent, so the processes together
never let more through than the bucket allows; what a lease costs is the other way round:
tokens leased to a process that then sees no more requests for the key are not spent (at most
one lease per process and key, until it sees the key again). docs/operations.md has the bound.

RateLimit-Remaining is this process's view: its unspent lease plus what the shared bucket held
at its last ask (other processes may have spent some since; at most MAX_LEASE_AGE ago).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import Protocol

from keyport.domain import rate_limits as rules
from keyport.domain.rate_limits import Decision, Policy

LEASE_SECONDS = 5.0  # unspent tokens go back to the shared bucket after this
MAX_LEASE = 50_000  # tokens; seconds of the busiest key one process can serve
MAX_LEASES = 200_000  # keys a process holds leases for; expired ones are let go beyond this
LEASE_FRACTION = 8  # a grant is at most 1/8 of the tokens left: near the limit, one at a time
KEEP_FILL = 16  # an expired lease lives on if the bucket held this many times its grant
# Seconds: a lease that lives on asks again after this at the latest. With many keys each seen
# every second or so, these asks are most of the Redis work (bench/README.md, "10,000 keys").
MAX_LEASE_AGE = 60.0
HEADROOM = 1.25  # an ask wants the demand of one lifetime and a quarter more
MAX_GROWTH = 8  # an ask wants at most this many times the last grant (plus this many)


class LeaseStore(Protocol):
    async def lease(self, key: str, policy: Policy, want: int, give_back: int) -> tuple[int, float]:
        """Give back `give_back` tokens, then take up to `want` from the bucket `key`:
        (tokens granted, tokens left in the bucket)."""
        ...


def first_lease(policy: Policy) -> int:
    """A key's first ask: what it may spend in one lease lifetime, at most a LEASE_FRACTION
    of a full bucket (the store caps what it grants at that fraction of what is left)."""
    lifetime = math.ceil(policy.per_second * LEASE_SECONDS)
    return max(1, min(MAX_LEASE, lifetime, policy.burst // LEASE_FRACTION))


def next_lease(lease: _Lease, now: float) -> int:
    """The next ask after `lease`: the demand it saw, over the time the next lease may live
    (MAX_LEASE_AGE when the bucket is far from empty, else LEASE_SECONDS), with HEADROOM; no
    more than MAX_GROWTH times its grant, and no more than a LEASE_FRACTION of the bucket's
    estimated fill (its fill at the last ask, the unspent tokens coming back, the refill since).
    """
    policy = lease.policy
    spent = max(0, lease.granted - lease.tokens)
    valid = max(LEASE_SECONDS, lease.expires - lease.granted_at)  # longer if it lived on
    lived = min(valid, max(now - lease.granted_at, LEASE_SECONDS / 100))
    far = lease.granted > 0 and lease.shared >= KEEP_FILL * lease.granted
    horizon = MAX_LEASE_AGE if far else LEASE_SECONDS
    demand = math.ceil(spent * horizon / lived * HEADROOM)
    refill = (now - lease.granted_at) * policy.per_second
    fill = min(float(policy.burst), lease.shared + lease.tokens + refill)
    want = min(demand, MAX_GROWTH * (lease.granted + 1), int(fill // LEASE_FRACTION), MAX_LEASE)
    return max(1, want)


class _Lease:
    __slots__ = (
        "asking",
        "expires",
        "granted",
        "granted_at",
        "policy",
        "refused_until",
        "shared",
        "size",
        "tokens",
    )

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.tokens = 0  # leased, not yet spent
        self.shared = 0.0  # tokens in the shared bucket after the last ask
        self.expires = 0.0  # monotonic: unspent tokens go back after this
        self.granted = 0  # tokens the last ask got
        self.granted_at = 0.0
        self.size = first_lease(policy)  # tokens to ask for next
        self.refused_until = 0.0  # monotonic: the shared bucket has no token before this
        self.asking: asyncio.Future[None] | None = None


def _keeps(lease: _Lease, now: float) -> bool:
    """An expired lease with tokens left lives on, with no ask, if the bucket held at least
    KEEP_FILL times its grant when it was granted (what it keeps from the other processes is a
    small share of what they can take), up to MAX_LEASE_AGE after it was granted."""
    end = lease.granted_at + MAX_LEASE_AGE
    if now >= end or lease.granted == 0 or lease.shared < KEEP_FILL * lease.granted:
        return False
    lease.expires = min(now + LEASE_SECONDS, end)
    return True


class LeasedBuckets:
    """A BucketStore (services/access/rate_limits.py) spending leases of a shared store's tokens."""

    def __init__(
        self, store: LeaseStore, *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._store = store
        self._monotonic = monotonic
        self._leases: dict[str, _Lease] = {}

    def take_now(self, key: str, policy: Policy) -> Decision | None:
        """The decision from this process's lease, or None when the store must be asked."""
        lease = self._leases.get(key)
        if lease is None or lease.policy is not policy:
            return None
        now = self._monotonic()
        tokens = lease.tokens
        if tokens and (now < lease.expires or _keeps(lease, now)):
            tokens = lease.tokens = tokens - 1
            left = min(float(policy.burst), tokens + lease.shared)
            return rules.decision(True, policy.burst, left, policy.per_second)
        if now < lease.refused_until:
            left = 1.0 - (lease.refused_until - now) * policy.per_second
            return rules.decision(False, policy.burst, max(0.0, left), policy.per_second)
        return None

    async def take(self, key: str, policy: Policy) -> Decision:
        while True:
            decision = self.take_now(key, policy)
            if decision is not None:
                return decision
            lease = self._leases.get(key)
            if lease is not None and lease.policy is policy and lease.asking is not None:
                await asyncio.shield(lease.asking)  # someone asks for this key: use their lease
                continue
            return await self._ask(key, policy, lease)

    async def give_back(self, key: str, policy: Policy) -> None:
        """A token taken from this process's lease goes back to it (Redis gets it back with the
        lease's other unspent tokens)."""
        lease = self._leases.get(key)
        if lease is not None and lease.policy is policy and lease.asking is None:
            lease.tokens += 1

    async def _ask(self, key: str, policy: Policy, lease: _Lease | None) -> Decision:
        now = self._monotonic()
        give_back = 0
        if lease is None or lease.policy is not policy:  # new, or the key's limit changed
            lease = self._new_lease(key, policy, now)
        elif lease.granted_at:
            give_back = lease.tokens
            lease.size = next_lease(lease, now)
        lease.tokens = 0
        asking = lease.asking = asyncio.get_running_loop().create_future()
        try:
            granted, shared = await self._store.lease(key, policy, lease.size, give_back)
        finally:
            lease.asking = None
            asking.set_result(None)
        now = self._monotonic()
        lease.shared = shared
        lease.granted = granted
        lease.granted_at = now
        if granted >= 1:
            lease.tokens = granted - 1
            lease.expires = now + LEASE_SECONDS
            lease.refused_until = 0.0
            left = min(float(policy.burst), granted - 1 + shared)
            return rules.decision(True, policy.burst, left, policy.per_second)
        lease.refused_until = now + (1.0 - shared) / policy.per_second
        return rules.decision(False, policy.burst, shared, policy.per_second)

    def _new_lease(self, key: str, policy: Policy, now: float) -> _Lease:
        if len(self._leases) >= MAX_LEASES:
            # Expired leases with nothing left are worth nothing: a new one starts the same.
            self._leases = {
                k: lease
                for k, lease in self._leases.items()
                if lease.expires > now or lease.refused_until > now or lease.asking is not None
            }
        lease = self._leases[key] = _Lease(policy)
        return lease
