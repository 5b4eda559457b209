"""Rate limits as token buckets: `rate` requests a minute on average, bursts up to `burst`.

A bucket holds at most `burst` tokens and refills continuously at `rate` tokens a minute; a
new bucket is full. A request takes one token, or is refused when less than one is left. So
with the defaults (100 a minute, burst 200) a quiet key may send 200 requests at once, and
then one every 0.6 s; over any interval of T seconds at most 200 + 100 * T / 60 get through.

Every limit is such a bucket: a key's request budget, an IP's failed authentications, the
sign-in attempts of an (account, IP) pair. Taking a token is a reservation made before the
work it pays for; `give_back` returns it when the rule says that work did not count (a
successful sign-in is not a failure).

What a decision tells the client (the IETF RateLimit header fields draft):
- `limit`: the bucket's capacity, the most requests that may pass at once (RateLimit-Limit);
- `remaining`: whole tokens left after this request (RateLimit-Remaining), never above limit;
- `reset`: seconds until the bucket is full again (RateLimit-Reset), rounded up;
- `retry_after`: seconds until the next token, when a request was refused (Retry-After),
  rounded up and at least 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

from keyport.domain.named_tuples import tuple_new

DEFAULT_BURST_FACTOR = 2  # "100 a minute with bursts to 200"
MAX_RATE = 1_000_000  # requests a minute; anything above is no limit worth the name


@dataclass(frozen=True, slots=True)
class Policy:
    rate: float  # tokens a minute
    burst: int  # capacity
    per_second: float = field(init=False, compare=False)

    def __post_init__(self) -> None:
        if not 0 < self.rate <= MAX_RATE or self.burst < 1:
            raise ValueError(f"a rate limit needs rate 0..{MAX_RATE} and burst >= 1")
        object.__setattr__(self, "per_second", self.rate / 60.0)

    @classmethod
    def per_window(cls, count: int, seconds: float) -> Policy:
        """`count` at once, then `count` more every `seconds` (10 failures per 15 minutes)."""
        return cls(count * 60.0 / seconds, count)

    def scaled_to(self, rate: int) -> Policy:
        """The same shape with another rate: a per-key limit keeps the default burst ratio."""
        return Policy(rate, max(1, round(rate * self.burst / self.rate)))


class Decision(NamedTuple):
    """One request's fate and the bucket after it. Cheap to make; read what you need."""

    allowed: bool
    limit: int
    tokens: float  # left after this request
    per_second: float

    @property
    def remaining(self) -> int:
        return int(self.tokens)

    @property
    def reset(self) -> float:
        """Seconds until the bucket is full again."""
        return (self.limit - self.tokens) / self.per_second

    @property
    def retry_after(self) -> float:
        """Seconds until one token is back; 0 when one is there."""
        return (1.0 - self.tokens) / self.per_second if self.tokens < 1.0 else 0.0


def decision(allowed: bool, limit: int, tokens: float, per_second: float) -> Decision:
    """`Decision(...)` at a third of the cost (domain/named_tuples.py)."""
    return tuple_new(Decision, (allowed, limit, tokens, per_second))


def whole_seconds(wait: float) -> int:
    """A wait as headers say it: whole seconds, rounded up, so that waiting is enough (a
    float's last bit, as in 90.00000000000001, is no reason for another second)."""
    return max(1, math.ceil(wait - 1e-9))


_ONE = 1.0 - 1e-6  # float seconds since 1970 are exact to ~0.2 µs: 0.6 s must make a token


def take(policy: Policy, tokens: float, elapsed: float) -> Decision:
    """Refill a bucket of `tokens` for `elapsed` seconds, then take one token if there is one.
    A clock that went back refills nothing; a bucket never holds more than the burst (also
    when the key's limit was just lowered)."""
    if elapsed > 0.0:
        tokens += elapsed * policy.per_second
    if tokens > policy.burst:
        tokens = float(policy.burst)
    if tokens >= _ONE:
        return decision(True, policy.burst, max(0.0, tokens - 1.0), policy.per_second)
    return decision(False, policy.burst, tokens, policy.per_second)


def give_back(policy: Policy, tokens: float, elapsed: float) -> float:
    """The bucket after refilling for `elapsed` seconds and getting one token back."""
    if elapsed > 0.0:
        tokens += elapsed * policy.per_second
    return min(float(policy.burst), tokens + 1.0)


def decide(policy: Policy, tokens: float, allowed: bool) -> Decision:
    """The decision someone else (Redis) took, from the tokens it left."""
    return Decision(allowed, policy.burst, tokens, policy.per_second)
