"""Changing stored state the one way: audit it, log the invalidation, commit, then evict.

Every use case that changes a company, user or key does the same steps in the same order:
the audit entry and the invalidation-log row go into the change's own transaction (so no
change is ever unaudited, and other processes learn of it from the log), and only after the
commit are this process's caches evicted and the broadcasters told. A use case writes

    async with self._changes.open() as change:
        key = await change.uow.keys.get(..., for_update=True)
        await change.uow.keys.set_status(key.id, target)
        await change.record(company_id, AuditAction.KEY_REVOKED, actor, key.id, details, evict=True)

and leaves the rest to this module. An exception inside the block rolls everything back and
evicts nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from keyport.domain.audit import Actor
from keyport.domain.clock import Clock
from keyport.services.access.invalidation import Invalidator
from keyport.services.ports import UnitOfWork, UnitOfWorkFactory


class Change:
    """One open transaction and what it will evict once committed."""

    def __init__(self, uow: UnitOfWork, now: datetime, target_type: str, cache: str | None) -> None:
        self.uow = uow
        self.now = now
        self.evictions: list[str] = []
        self._target_type = target_type
        self._cache = cache

    async def record(
        self,
        company_id: str | None,
        action: str,
        actor: Actor,
        target_id: str,
        details: dict[str, Any] | None = None,
        *,
        evict: bool = False,
    ) -> None:
        """Audit the change; with `evict`, also drop the target from every process's cache."""
        await self.uow.audit.add(
            company_id=company_id,
            action=action,
            actor=actor,
            target_type=self._target_type,
            target_id=target_id,
            now=self.now,
            details=details,
        )
        if evict:
            if self._cache is None:
                raise RuntimeError(f"no cache holds a {self._target_type}: nothing to evict")
            await self.uow.invalidations.append(self._cache, target_id, self.now)
            self.evictions.append(target_id)


class Changes:
    """Changes to one type of target (`api_key`, `user`, `company`), audited under that name.

    `cache` is the cache kind (services.access.cache) that holds such targets, with the invalidator
    that evicts them; None where no cache holds them.
    """

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        target_type: str,
        cache: tuple[str, Invalidator] | None = None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._target_type = target_type
        self._cache = cache

    @asynccontextmanager
    async def open(self, now: datetime | None = None) -> AsyncIterator[Change]:
        """A write transaction that commits when the block ends, then evicts what it changed."""
        async with self._uow(write=True) as uow:
            kind = self._cache[0] if self._cache is not None else None
            change = Change(uow, now or self._clock.now(), self._target_type, kind)
            yield change
            await uow.commit()
        if self._cache is not None:
            kind, invalidator = self._cache
            for target_id in change.evictions:
                await invalidator.changed(kind, target_id)
