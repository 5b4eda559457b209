"""The token bucket's rule in Lua, once, for every script that touches a bucket in Redis.

A bucket is a hash {tokens, at}: the tokens left at `at` (Redis's clock, seconds). Reading it
refills by `rate` tokens a second since `at`, capped at `burst`; writing it stamps `now` and
lets it expire once it would be full again, so idle keys cost nothing. The exact scripts
(redis/buckets.py) and the leases (redis/leases.py) share these functions, so they keep
operating on the same hash by the same rule.
"""

from __future__ import annotations

FUNCTIONS = """
local function clock_now()
  local clock = redis.call('TIME')
  return tonumber(clock[1]) + tonumber(clock[2]) / 1000000
end
-- The tokens in the bucket now, or nil for a bucket that does not exist (full).
local function refilled(key, burst, rate, now)
  local state = redis.call('HMGET', key, 'tokens', 'at')
  local tokens = tonumber(state[1])
  local at = tonumber(state[2])
  if tokens == nil or at == nil then
    return nil
  end
  return math.min(burst, tokens + math.max(0, now - at) * rate)
end
local function store(key, tokens, burst, rate, now)
  redis.call('HSET', key, 'tokens', string.format('%.6f', tokens),
    'at', string.format('%.6f', now))
  redis.call('PEXPIRE', key, math.ceil((burst - tokens) / rate * 1000) + 1000)
end
"""
