"""Leases of rate-limit tokens from the buckets in Redis (`keyport.redis.buckets`).

One atomic script refills a key's bucket on Redis's clock, takes back what a process returns
from an expired lease, and grants up to `want` tokens, never more than a LEASE_FRACTION of
what is left, and at least one while one is there. The bucket is the same hash the exact
script uses, so both kinds of caller share it.
"""

from __future__ import annotations

from redis.asyncio import Redis

from keyport.domain.rate_limits import Policy

LEASE_FRACTION = 8  # a grant is at most 1/8 of the tokens left: near the limit, one at a time

# KEYS[1]: the bucket. ARGV: burst, tokens a second, tokens wanted, tokens given back.
# Returns {tokens granted, tokens left in the bucket}.
_LEASE = f"""
local burst = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local back = tonumber(ARGV[4])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = burst
else
  tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
end
tokens = math.min(burst, tokens + back)
local granted = 0
if tokens >= 1 - 1e-6 then
  granted = math.min(want, math.floor(tokens / {LEASE_FRACTION}))
  granted = math.max(1, math.min(granted, math.floor(tokens + 1e-6)))
  tokens = math.max(0, tokens - granted)
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens),
  'at', string.format('%.6f', now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return {{granted, string.format('%.6f', tokens)}}
"""


class RedisLeases:
    def __init__(self, redis: Redis, *, prefix: str = "keyport:rate:") -> None:
        self._script = redis.register_script(_LEASE)
        self._prefix = prefix

    async def lease(self, key: str, policy: Policy, want: int, give_back: int) -> tuple[int, float]:
        granted, tokens = await self._script(
            keys=[self._prefix + key],
            args=[policy.burst, repr(policy.per_second), want, give_back],
        )
        return int(granted), float(tokens)
