"""Writing recorded usage to the database in the background, every few seconds.

What a crash can lose: the requests counted since the last successful flush, so at most one
flush interval of counts (KEYPORT_USAGE_FLUSH_INTERVAL, 5 s by default), plus up to a minute
of `last_used_at` and client-sighting progress (usage_recorder.py). A clean shutdown (SIGTERM,
Ctrl-C) loses nothing: `stop` waits for a flush in progress and then writes everything that is
left, last uses and sightings included. A flush that fails (database down) puts its batch back
and is retried on the next tick.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from keyport.domain.usage import minute_of
from keyport.services.observability.usage_recorder import (
    COUNT_RETENTION,
    SIGHTING_RETENTION,
    UsageBatch,
    UsageRecorder,
    UsageStore,
)
from keyport.services.runtime.periodic import PeriodicTask

logger = logging.getLogger(__name__)

PRUNE_EVERY = 3600.0  # seconds between two deletions of old usage


class UsageFlusher:
    def __init__(
        self,
        recorder: UsageRecorder,
        store: UsageStore,
        *,
        interval: float,
        now: Callable[[], float],
    ) -> None:
        self._recorder = recorder
        self._store = store
        self._now = now
        self._lock = asyncio.Lock()
        # Graceful: a flush in progress finishes; stop() then writes the rest, last uses too.
        self._loop = PeriodicTask(
            "usage-flusher", self._tick, interval=interval, wait_first=True, graceful=True
        )
        self._last_prune: float | None = None
        self.last_success: float | None = None  # POSIX seconds of the last written flush
        self.failures = 0
        self.written_requests = 0

    @property
    def lag(self) -> float:
        """Age in seconds of the oldest request counted but not yet written; 0 if none."""
        oldest = self._recorder.oldest_pending
        return max(0.0, self._now() - oldest) if oldest is not None else 0.0

    async def start(self) -> None:
        await self._loop.start()

    async def stop(self) -> None:
        """Finish the flush in progress, then write everything still in memory."""
        await self._loop.stop()
        if not await self.flush(final=True):
            logger.error("usage could not be written at shutdown; it is lost")
        await self._store.close()

    async def flush(self, *, final: bool = False) -> bool:
        """Write what was recorded; False (and the batch kept for later) if that failed."""
        async with self._lock:
            batch = UsageBatch()
            steps = self._recorder.drain_in_steps(batch, final=final)
            try:
                for _ in steps:
                    await asyncio.sleep(0)  # requests are answered between two steps
            except BaseException:  # cancelled mid-drain: finish it and keep all of it
                for _ in steps:
                    pass
                self._recorder.restore(batch)
                raise
            if not batch:
                return True
            try:
                await self._store.write(batch)
            except Exception:
                self._recorder.restore(batch)
                self.failures += 1
                logger.warning("writing usage failed; retrying on the next flush", exc_info=True)
                return False
            self.written_requests += batch.requests
            self.last_success = self._now()
            return True

    async def _tick(self) -> None:
        await self.flush()
        await self._prune_now_and_then()

    async def _prune_now_and_then(self) -> None:
        if self._last_prune is not None and time.monotonic() - self._last_prune < PRUNE_EVERY:
            return
        self._last_prune = time.monotonic()
        now = datetime.fromtimestamp(self._now(), UTC)
        try:
            await self._store.prune(
                minute_of((now - COUNT_RETENTION).timestamp()), now - SIGHTING_RETENTION
            )
        except Exception:
            logger.warning("pruning old usage failed", exc_info=True)
