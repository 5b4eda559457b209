"""A background loop: one asyncio task that runs a step, pauses, and runs it again until stopped.

What every loop of Keyport needs, written once: start and stop, an interval, a step that fails
without ending the loop, and a warning once per outage (not once per failed step) with a line
when it works again. `graceful` loops let the step in progress finish when stopped (a flush of
usage must not be cut in half); the others are cancelled at once (a poll or a subscription
holds nothing that would be lost).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

logger = logging.getLogger(__name__)


class PeriodicTask:
    def __init__(
        self,
        name: str,
        step: Callable[[], Awaitable[None]],
        *,
        interval: float,
        wait_first: bool = False,
        graceful: bool = False,
        failure_message: str | None = None,
        recovery_message: str | None = None,
    ) -> None:
        self.name = name
        self._step = step
        self._interval = interval
        self._wait_first = wait_first
        self._graceful = graceful
        self._failure_message = failure_message or f"{name} failed; retrying every {interval}s"
        self._recovery_message = recovery_message
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.healthy = True  # False from a failed step until one succeeds (or recovered())

    async def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name=f"keyport-{self.name}")

    async def stop(self) -> None:
        """Graceful: let the step in progress finish. Otherwise: cancel it."""
        self._stopping.set()
        if self._task is None:
            return
        if not self._graceful:
            self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    def recovered(self) -> None:
        """Works again: for a step that never returns (a subscription) once it is connected."""
        if not self.healthy and self._recovery_message:
            logger.warning(self._recovery_message)
        self.healthy = True

    async def _run(self) -> None:
        if self._wait_first and await self._pause():
            return
        while True:
            await self._step_once()
            if await self._pause():
                return

    async def _step_once(self) -> None:
        try:
            await self._step()
        except Exception:
            if self.healthy:
                logger.warning(self._failure_message, exc_info=True)
            self.healthy = False
        else:
            self.recovered()

    async def _pause(self) -> bool:
        """Waits one interval or until stopped; True when stopped."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=self._interval)
        return self._stopping.is_set()
