"""Rate-limit buckets in Redis, shared by every process: one atomic script per decision.

Used as is where every decision must be exact (failed authentications); the per-key budget
leases tokens from the same buckets instead (redis/leases.py, services/access/token_leases.py).

The script refills and takes in one step on Redis's own clock, so processes whose clocks
disagree still share one bucket exactly. A bucket expires once it would be full again, so
idle keys cost nothing. The client given here should fail fast (short socket timeouts, no
retries): `services.access.rate_limits.FailoverBuckets` falls back to per-process buckets meanwhile.
"""

from __future__ import annotations

from redis.asyncio import Redis

from keyport.domain import rate_limits as rules
from keyport.domain.rate_limits import Decision, Policy
from keyport.redis.bucket_script import FUNCTIONS

# KEYS[1]: the bucket. ARGV: burst, tokens a second. Returns {allowed, tokens left}.
_TAKE = (
    FUNCTIONS
    + """
local burst = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local now = clock_now()
local tokens = refilled(KEYS[1], burst, rate, now) or burst
local allowed = 0
if tokens >= 1 - 1e-6 then
  tokens = math.max(0, tokens - 1)
  allowed = 1
end
store(KEYS[1], tokens, burst, rate, now)
return {allowed, string.format('%.6f', tokens)}
"""
)

# KEYS[1]: the bucket. ARGV: burst, tokens a second. Refills, then adds the token back.
_GIVE_BACK = (
    FUNCTIONS
    + """
local burst = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local now = clock_now()
local tokens = refilled(KEYS[1], burst, rate, now)
if tokens == nil then
  return 0
end
store(KEYS[1], math.min(burst, tokens + 1), burst, rate, now)
return 1
"""
)


class RedisBuckets:
    def __init__(self, redis: Redis, *, prefix: str = "keyport:rate:") -> None:
        self._script = redis.register_script(_TAKE)
        self._give_back = redis.register_script(_GIVE_BACK)
        self._prefix = prefix

    async def take(self, key: str, policy: Policy) -> Decision:
        allowed, tokens = await self._script(
            keys=[self._prefix + key], args=[policy.burst, repr(policy.per_second)]
        )
        return rules.decide(policy, float(tokens), bool(allowed))

    def take_now(self, key: str, policy: Policy) -> Decision | None:
        return None  # every decision is Redis's

    async def give_back(self, key: str, policy: Policy) -> None:
        await self._give_back(
            keys=[self._prefix + key], args=[policy.burst, repr(policy.per_second)]
        )
