"""The Redis push channel for cache invalidations (see keyport.db.invalidation_channels): the
changing process PUBLISHes after commit; each process SUBSCRIBEs."""

from __future__ import annotations

import contextlib

from redis.asyncio import Redis

from keyport.db.invalidation_channels import CHANNEL, Apply, Listener, encode


class RedisChannel(Listener):
    name = "redis-subscribe"

    def __init__(self, redis: Redis, apply: Apply) -> None:
        super().__init__(apply)
        self._redis = redis

    async def publish(self, kind: str, target: str) -> None:
        await self._redis.publish(CHANNEL, encode(kind, target))

    async def _listen(self) -> None:
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(CHANNEL)
            self._now_connected()
            while True:
                message = await pubsub.get_message(timeout=5.0)
                if message is not None and message.get("type") == "message":
                    self._deliver(message["data"])
                elif message is None:
                    await pubsub.ping()
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
