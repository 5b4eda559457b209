"""Rate limits at the gate: an IP that failed too often is refused before its key is looked
at, a key over its budget gets 429, and every authenticated answer says where it stands:

    RateLimit-Limit: 200        the bucket's capacity (the most requests at once)
    RateLimit-Remaining: 143    whole requests left right now
    RateLimit-Reset: 34         seconds until the bucket is full again
    Retry-After: 1              on a 429: seconds until the next request may pass
"""

from __future__ import annotations

import math

from keyport.domain.errors import RateLimited
from keyport.domain.principal import Principal
from keyport.domain.rate_limits import Decision, whole_seconds
from keyport.services.access.failed_auth_limiter import FailedAuthLimiter
from keyport.services.access.rate_limits import KeyRateLimiter
from keyport.web import errors

Rendered = tuple[int, bytes, errors.Headers]
_NUMBERS = [str(n).encode() for n in range(1001)]  # most header values, encoded once


def _encoded(number: int) -> bytes:
    return _NUMBERS[number] if 0 <= number <= 1000 else str(number).encode()


def rate_limit_headers(decision: Decision) -> errors.Headers:
    tokens = decision.tokens
    limit = decision.limit
    return [
        (b"ratelimit-limit", _encoded(limit)),
        (b"ratelimit-remaining", _encoded(int(tokens))),
        (b"ratelimit-reset", _encoded(math.ceil((limit - tokens) / decision.per_second))),
    ]


class Throttle:
    def __init__(self, keys: KeyRateLimiter | None, failures: FailedAuthLimiter | None) -> None:
        self._keys = keys
        self._failures = failures

    def refuse_client(self, ip: str | None) -> Rendered | None:
        """A 429 for an IP that is still serving its time for failed authentications."""
        if self._failures is None:
            return None
        wait = self._failures.refused_for(ip)
        if wait is None:
            return None
        return errors.render(RateLimited(whole_seconds(wait)))

    async def authentication_failed(self, ip: str | None) -> None:
        if self._failures is not None:
            await self._failures.failed(ip)

    def authentication_failed_now(self, ip: str | None) -> bool:
        """`authentication_failed` when it needs no I/O; False, having counted nothing, else."""
        return self._failures is None or self._failures.failed_now(ip)

    def limits(self, principal: Principal) -> bool:
        """Whether the key has a budget to take from (limits on, or a rate of its own)."""
        keys = self._keys
        return keys is not None and keys.policy_for(principal) is not None

    async def admit(self, principal: Principal, headers: errors.Headers) -> Rendered | None:
        """Takes the request from the key's budget and adds the RateLimit headers to `headers`;
        a 429 when the budget is spent."""
        keys = self._keys
        if keys is None:
            return None
        policy = keys.policy_for(principal)
        if policy is None:
            return None
        decision = keys.take_now(principal, policy)  # no coroutine unless I/O is needed
        if decision is None:
            decision = await keys.take(principal, policy)
        headers.extend(rate_limit_headers(decision))
        if decision.allowed:
            return None
        return errors.render(RateLimited(whole_seconds(decision.retry_after)))

    def admit_now(self, principal: Principal, headers: errors.Headers) -> bool:
        """`admit` when it admits without I/O: True, the request taken from the budget and
        the RateLimit headers added. False when it would need I/O or refuse, having taken
        nothing (whoever needs the answer then awaits `admit`)."""
        keys = self._keys
        if keys is None:
            return True
        policy = keys.policy_for(principal)
        if policy is None:
            return True
        decision = keys.take_now(principal, policy)  # a refusal takes no token
        if decision is None or not decision.allowed:
            return False
        headers.extend(rate_limit_headers(decision))
        return True
