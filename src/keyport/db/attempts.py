"""Sign-in failure counters in Redis (services.attempts.AttemptCounter), shared by processes."""

from __future__ import annotations

from redis.asyncio import Redis


class RedisAttemptCounter:
    def __init__(self, redis: Redis, *, prefix: str = "keyport:") -> None:
        self._redis = redis
        self._prefix = prefix

    def _key(self, key: str) -> str:
        return f"{self._prefix}sign-in-failures:{key}"

    async def failures(self, key: str) -> tuple[int, float]:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.get(self._key(key))
            pipe.pttl(self._key(key))
            count, ttl_ms = await pipe.execute()
        if count is None or ttl_ms is None or ttl_ms <= 0:
            return 0, 0.0
        return int(count), ttl_ms / 1000

    async def add_failure(self, key: str, window: float) -> None:
        # The window starts at the first failure: only a new key gets an expiry.
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(self._key(key))
            pipe.pexpire(self._key(key), int(window * 1000), nx=True)
            await pipe.execute()

    async def clear(self, key: str) -> None:
        await self._redis.delete(self._key(key))
