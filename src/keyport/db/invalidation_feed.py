"""Polls the invalidation log so this process evicts what other processes changed.

Works on every backend (the SQLite default included) and needs nothing but the database.
Sequence numbers can commit out of order on PostgreSQL, so a gap below the newest seen number
is re-read until it fills or is older than `gap_patience` seconds (a rolled-back insert).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from keyport.db.tables import cache_invalidations

logger = logging.getLogger(__name__)

RETENTION = timedelta(hours=1)


class InvalidationPoller:
    def __init__(
        self,
        engine: AsyncEngine,
        apply: Callable[[str, str], None],
        *,
        interval: float = 0.2,
        gap_patience: float = 5.0,
        now: Callable[[], datetime],
    ) -> None:
        self._engine = engine
        self._apply = apply
        self._interval = interval
        self._gap_patience = gap_patience
        self._now = now
        self._floor = 0  # every seq <= floor has been applied or given up on
        self._seen: set[int] = set()
        self._gaps_since: dict[int, float] = {}
        self._task: asyncio.Task[None] | None = None
        self.healthy = True

    async def start(self) -> None:
        async with self._engine.connect() as connection:
            newest = await connection.scalar(select(func.max(cache_invalidations.c.seq)))
        self._floor = int(newest or 0)
        self._task = asyncio.create_task(self._run(), name="keyport-invalidation-poller")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def poll_once(self) -> int:
        """Apply every new invalidation; returns how many were applied."""
        async with self._engine.connect() as connection:
            rows = (
                await connection.execute(
                    select(
                        cache_invalidations.c.seq,
                        cache_invalidations.c.kind,
                        cache_invalidations.c.target,
                    )
                    .where(cache_invalidations.c.seq > self._floor)
                    .order_by(cache_invalidations.c.seq)
                )
            ).all()
        applied = 0
        for seq, kind, target in rows:
            if seq not in self._seen:
                self._apply(kind, target)
                self._seen.add(seq)
                applied += 1
        self._advance_floor()
        return applied

    def _advance_floor(self) -> None:
        if not self._seen:
            return
        now = time.monotonic()
        for seq in range(self._floor + 1, max(self._seen) + 1):
            if seq in self._seen:
                self._seen.discard(seq)
                self._gaps_since.pop(seq, None)
            elif now - self._gaps_since.setdefault(seq, now) > self._gap_patience:
                self._gaps_since.pop(seq)
            else:
                return
            self._floor = seq

    async def prune(self) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(
                delete(cache_invalidations).where(
                    cache_invalidations.c.created_at < self._now() - RETENTION
                )
            )

    async def _run(self) -> None:
        last_prune = time.monotonic()
        while True:
            try:
                await self.poll_once()
                if time.monotonic() - last_prune > RETENTION.total_seconds() / 4:
                    last_prune = time.monotonic()
                    await self.prune()
                if not self.healthy:
                    logger.warning("invalidation log reachable again")
                self.healthy = True
            except Exception:
                if self.healthy:
                    logger.warning(
                        "cannot read the invalidation log; the cache TTL bounds "
                        "staleness until it is back",
                        exc_info=True,
                    )
                self.healthy = False
            await asyncio.sleep(self._interval)
