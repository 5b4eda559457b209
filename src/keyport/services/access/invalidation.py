"""Telling every process that a key, user or company changed.

A change is (1) written to the invalidation log in the same transaction as the change, which
other processes poll, (2) applied to this process's caches before the change returns, and
(3) handed to any extra broadcaster (Redis pub/sub, PostgreSQL NOTIFY) plugged in at bootstrap
for faster propagation. The cache TTL bounds staleness if all of that is lost.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from keyport.services.access.cache import Caches

logger = logging.getLogger(__name__)

Broadcast = Callable[[str, str], Awaitable[None]]


class Invalidator:
    def __init__(self, caches: Caches) -> None:
        self._caches = caches
        self._broadcasters: list[Broadcast] = []
        self._broadcast_failing = False

    def add_broadcaster(self, broadcast: Broadcast) -> None:
        self._broadcasters.append(broadcast)

    async def changed(self, kind: str, target: str) -> None:
        """Call after the change committed: evicts here at once, then tells the others."""
        self._caches.invalidate(kind, target)
        for broadcast in self._broadcasters:
            try:
                await broadcast(kind, target)
            except Exception:  # a lost broadcast is bounded by the poller and the TTL
                if not self._broadcast_failing:  # once per outage, not once per change
                    logger.warning("cache invalidation broadcast failed", exc_info=True)
                self._broadcast_failing = True
            else:
                if self._broadcast_failing:
                    logger.warning("cache invalidation broadcasts work again")
                self._broadcast_failing = False

    def received(self, kind: str, target: str) -> None:
        """An invalidation from another process."""
        self._caches.invalidate(kind, target)
