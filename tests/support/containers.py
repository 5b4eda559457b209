"""Containers for tests: built over given settings, migrated, closed when the block ends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from keyport.bootstrap import Container, build_container
from keyport.config import Settings
from keyport.domain.clock import FixedClock

FAST_PASSWORDS: dict[str, Any] = {"password_time_cost": 1, "password_memory_cost": 64}
TEST_SECRET_KEY = "test-server-secret-0123456789-abcdefghij"


@asynccontextmanager
async def migrated(settings: Settings, clock: FixedClock) -> AsyncIterator[Container]:
    """A container over `settings` with its database migrated; closed when the block ends."""
    built = build_container(settings, clock=clock)
    await built.migrate()
    try:
        yield built
    finally:
        await built.close()


@asynccontextmanager
async def webhook_container(
    database_url: str, clock: FixedClock, **settings: Any
) -> AsyncIterator[Container]:
    """A container whose webhooks may go to loopback, where the test receiver listens."""
    config = Settings(
        database_url=database_url, webhook_allow_private=True, **FAST_PASSWORDS, **settings
    )
    async with migrated(config, clock) as built:
        yield built


@asynccontextmanager
async def two_processes(
    settings: Settings, clock: FixedClock | None = None, *, migrate: bool = False
) -> AsyncIterator[tuple[Container, Container]]:
    """Two containers over one database and Redis, as two server processes would be; closed
    when the block ends. With `migrate`, the first migrates the database before the block."""
    first, second = build_container(settings, clock=clock), build_container(settings, clock=clock)
    try:
        if migrate:
            await first.migrate()
        yield first, second
    finally:
        await first.close()
        await second.close()
