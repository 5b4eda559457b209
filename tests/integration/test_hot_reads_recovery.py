"""A pooled PostgreSQL connection that the driver left in a broken state is dropped and the read
tried once more, instead of answering 500 (found by the cluster run while PostgreSQL shut down
under load)."""

from __future__ import annotations

from typing import Any

import asyncpg

from keyport.db.hot_reads import PostgresHotReader


class BreakingOnce:
    """The real pool, whose first read fails as the driver's broken state did."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool, self.reads, self.expired = pool, 0, 0

    async def fetch(self, query: str, *args: Any) -> Any:
        self.reads += 1
        if self.reads == 1:
            raise asyncpg.exceptions.InternalClientError(
                "cannot switch to state 12; another operation (2) is in progress"
            )
        return await self.pool.fetch(query, *args)

    async def expire_connections(self) -> None:
        self.expired += 1
        await self.pool.expire_connections()


async def test_a_broken_pooled_connection_is_dropped_and_the_read_tried_again(
    postgres_url: str,
) -> None:
    reader = PostgresHotReader(postgres_url)
    real = await reader._acquire_pool()
    breaking = reader._pool = BreakingOnce(real)
    try:
        assert await reader.principal_by_digest("0" * 64) is None  # no such key: read fine
        assert (breaking.reads, breaking.expired) == (2, 1)
    finally:
        reader._pool = real
        await reader.close()
