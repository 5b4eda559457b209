"""Polls the invalidation log so this process evicts what other processes changed.

Works on every backend (the SQLite default included) and needs nothing but the database.
Sequence numbers can commit out of order on PostgreSQL, so a gap below the newest seen number
is re-read until it fills or is older than `gap_patience` seconds (a rolled-back insert).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from keyport.db.tables import cache_invalidations
from keyport.services.runtime.periodic import PeriodicTask

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
        self._gap_patience = gap_patience
        self._now = now
        self._floor = 0  # every seq <= floor has been applied or given up on
        self._seen: set[int] = set()
        self._gaps_since: dict[int, float] = {}
        self._last_prune = time.monotonic()
        self._loop = PeriodicTask(
            "invalidation-poller",
            self._tick,
            interval=interval,
            failure_message="cannot read the invalidation log; the cache TTL bounds "
            "staleness until it is back",
            recovery_message="invalidation log reachable again",
        )

    @property
    def healthy(self) -> bool:
        return self._loop.healthy

    async def start(self) -> None:
        async with self._engine.connect() as connection:
            newest = await connection.scalar(select(func.max(cache_invalidations.c.seq)))
        self._floor = int(newest or 0)
        await self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

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

    async def _tick(self) -> None:
        await self.poll_once()
        if time.monotonic() - self._last_prune > RETENTION.total_seconds() / 4:
            self._last_prune = time.monotonic()
            await self.prune()
