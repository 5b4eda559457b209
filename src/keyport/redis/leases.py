"""Leases of rate-limit tokens from the buckets in Redis (`keyport.redis.buckets`).

One atomic script refills each asked key's bucket on Redis's clock, takes back what a process
returns from an expired lease, and grants up to `want` tokens, never more than a
LEASE_FRACTION of what is left, and at least one while one is there. One call asks for many
keys: the asks a process makes while a call is on its way go in the next one. The bucket is
the same hash the exact script uses, so both kinds of caller share it.
"""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from keyport.domain.rate_limits import Policy
from keyport.redis.bucket_script import FUNCTIONS
from keyport.services.access.token_leases import LEASE_FRACTION

__all__ = ["LEASE_FRACTION", "RedisLeases"]

MAX_BATCH = 512  # asks sent in one script call

# KEYS[i]: a bucket. ARGV[4i-3..4i]: its burst, tokens a second, tokens wanted, tokens given
# back. Returns {granted 1, left 1, granted 2, left 2, ...}: tokens granted, tokens left.
_LEASE = (
    FUNCTIONS
    + f"""
local now = clock_now()
local out = {{}}
for i = 1, #KEYS do
  local a = (i - 1) * 4
  local burst = tonumber(ARGV[a + 1])
  local rate = tonumber(ARGV[a + 2])
  local want = tonumber(ARGV[a + 3])
  local back = tonumber(ARGV[a + 4])
  local tokens = math.min(burst, (refilled(KEYS[i], burst, rate, now) or burst) + back)
  local granted = 0
  if tokens >= 1 - 1e-6 then
    granted = math.min(want, math.floor(tokens / {LEASE_FRACTION}))
    granted = math.max(1, math.min(granted, math.floor(tokens + 1e-6)))
    tokens = math.max(0, tokens - granted)
  end
  store(KEYS[i], tokens, burst, rate, now)
  out[2 * i - 1] = granted
  out[2 * i] = string.format('%.6f', tokens)
end
return out
"""
)

_Ask = tuple[str, Policy, int, int, "asyncio.Future[tuple[int, float]]"]


class RedisLeases:
    """Asks made while a script call is on its way go together in the next one: a process
    busy with many keys asks for many of them in one round trip."""

    def __init__(self, redis: Redis, *, prefix: str = "keyport:rate:") -> None:
        self._script = redis.register_script(_LEASE)
        self._prefix = prefix
        self._waiting: list[_Ask] = []
        self._sender: asyncio.Task[None] | None = None
        self.calls = 0  # script calls made (the tests count them)

    async def lease(self, key: str, policy: Policy, want: int, give_back: int) -> tuple[int, float]:
        future: asyncio.Future[tuple[int, float]] = asyncio.get_running_loop().create_future()
        self._waiting.append((self._prefix + key, policy, want, give_back, future))
        if self._sender is None:
            self._sender = asyncio.create_task(self._send())
        return await future

    async def _send(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
                await self._call(batch)
        finally:
            self._sender = None

    async def _call(self, batch: list[_Ask]) -> None:
        args: list[int | str] = []
        for _, policy, want, give_back, _ in batch:
            args += (policy.burst, repr(policy.per_second), want, give_back)
        self.calls += 1
        try:
            answer = await self._script(keys=[ask[0] for ask in batch], args=args)
        except Exception as error:
            for *_, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        except BaseException:  # cancelled (shutdown): so are the asks
            for *_, future in [*batch, *self._waiting]:
                future.cancel()
            self._waiting = []
            raise
        for i, (*_, future) in enumerate(batch):
            if not future.done():  # its request may have been cancelled meanwhile
                future.set_result((int(answer[2 * i]), float(answer[2 * i + 1])))
