"""Push channels for cache invalidations, faster than the poll of the invalidation log.

- PostgreSQL: the change's own transaction runs `pg_notify` (see repositories), so the
  notification is delivered exactly when the change commits; each process LISTENs.
- Redis: the changing process PUBLISHes after commit; each process SUBSCRIBEs
  (keyport.redis.invalidation_channel).

Either may lose a message (a dropped connection); the log poller and the cache TTL bound what
a lost message can cost. Both reconnect by themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import make_url

from keyport.services.runtime.periodic import PeriodicTask

CHANNEL = "keyport_invalidations"
Apply = Callable[[str, str], None]
RECONNECT_DELAY = 1.0


def encode(kind: str, target: str) -> str:
    return f"{kind}:{target}"


def decode(payload: str | bytes) -> tuple[str, str] | None:
    text = payload.decode() if isinstance(payload, bytes) else payload
    kind, sep, target = text.partition(":")
    return (kind, target) if sep else None


class Listener:
    """A background task that keeps one subscription alive and applies what arrives."""

    name = "listener"

    def __init__(self, apply: Apply) -> None:
        self._apply = apply
        self.connected = asyncio.Event()
        # One connection at a time, for as long as it lasts; a new one a moment after a loss.
        self._loop = PeriodicTask(
            self.name,
            self._connection,
            interval=RECONNECT_DELAY,
            failure_message=f"{self.name} lost; retrying every {RECONNECT_DELAY}s "
            "(the log poll still evicts)",
            recovery_message=f"{self.name} connected again",
        )

    def _deliver(self, payload: str | bytes) -> None:
        decoded = decode(payload)
        if decoded is not None:
            self._apply(*decoded)

    async def start(self) -> None:
        await self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def _connection(self) -> None:
        try:
            await self._listen()
        finally:
            self.connected.clear()

    def _now_connected(self) -> None:
        self._loop.recovered()  # logs "connected again" after an outage
        self.connected.set()

    async def _listen(self) -> None:
        raise NotImplementedError


class PostgresListener(Listener):
    name = "postgres-listen"

    def __init__(self, database_url: str, apply: Apply) -> None:
        super().__init__(apply)
        self._dsn = (
            make_url(database_url)
            .set(drivername="postgresql")
            .render_as_string(hide_password=False)
        )

    async def _listen(self) -> None:
        import asyncpg

        connection = await asyncpg.connect(self._dsn)
        lost = asyncio.Event()
        try:
            connection.add_termination_listener(lambda _c: lost.set())
            await connection.add_listener(CHANNEL, self._on_notify)
            self._now_connected()
            while not lost.is_set():
                # A notification never comes on a dead socket: check the link now and then.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), timeout=5)
                if not lost.is_set():
                    await connection.execute("SELECT 1")
        finally:
            with contextlib.suppress(Exception):
                await connection.close(timeout=1)
        raise ConnectionError("PostgreSQL LISTEN connection closed")

    def _on_notify(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        self._deliver(payload)
