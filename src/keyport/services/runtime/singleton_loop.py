"""Background loops that run in one process at a time, whatever the number of processes.

A loop holds a named lease (a row with a holder and an expiry, services.ports.LeaseStore)
and renews it every tick; a process that crashes stops renewing, and the next process to try
takes the lease over once it has run out. This works on SQLite as well as PostgreSQL and
survives restarts: nothing but the row remembers who runs.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Protocol

from keyport.services.runtime.periodic import PeriodicTask

logger = logging.getLogger(__name__)


class LeaseStore(Protocol):
    async def acquire(self, name: str, holder: str, now: datetime, until: datetime) -> bool:
        """Take or renew `name` for `holder` until `until`; False while another holds it."""
        ...

    async def release(self, name: str, holder: str) -> None: ...


class SingletonLoop:
    """Runs `work` every `interval` seconds, in the one process holding the lease `name`.

    The lease lasts `ttl`, several intervals: a holder whose tick takes a while keeps it, a
    crashed one hands over after at most `ttl`. `work` must finish well inside `ttl`. The
    looping itself is services.runtime.periodic's, graceful: a tick in progress finishes at a stop.
    """

    def __init__(
        self,
        name: str,
        work: Callable[[], Awaitable[None]],
        leases: LeaseStore,
        now: Callable[[], datetime],
        *,
        interval: float,
        ttl: float,
    ) -> None:
        assert ttl > interval, "the lease must outlive a tick"
        self.name = name
        self._work = work
        self._leases = leases
        self._now = now
        self._ttl = timedelta(seconds=ttl)
        self._holder = uuid.uuid4().hex
        self._periodic = PeriodicTask(name, self._tick_or_raise, interval=interval, graceful=True)
        self.is_holder = False
        self.ticks = 0
        self._lease_failing = False

    async def start(self) -> None:
        await self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()
        if self.is_holder:
            with contextlib.suppress(Exception):
                await self._leases.release(self.name, self._holder)
            self.is_holder = False

    async def tick(self) -> bool:
        """One round: take or renew the lease, then work if held. True if it worked."""
        now = self._now()
        try:
            self.is_holder = await self._leases.acquire(
                self.name, self._holder, now, now + self._ttl
            )
        except Exception:
            if not self._lease_failing:  # once per outage, not once per tick
                logger.warning("lease %s could not be taken", self.name, exc_info=True)
            self._lease_failing = True
            self.is_holder = False
        else:
            if self._lease_failing:
                logger.warning("lease %s can be taken again", self.name)
            self._lease_failing = False
        if not self.is_holder:
            return False
        await self._work()
        self.ticks += 1
        return True

    async def _tick_or_raise(self) -> None:
        await self.tick()  # a failing `work` raises: PeriodicTask logs it once per outage
