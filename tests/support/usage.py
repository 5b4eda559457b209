"""What the database holds of a key's usage, read the same way by every test that checks it."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from keyport.db.engine import create_engine
from keyport.db.tables import key_usage_minutes


async def usage_totals(connection: AsyncConnection, key_id: str) -> tuple[int, int, int]:
    """The key's written requests: (success, client error, server error)."""
    minutes = key_usage_minutes.c
    row = (
        await connection.execute(
            select(
                func.sum(minutes.success),
                func.sum(minutes.client_error),
                func.sum(minutes.server_error),
            ).where(minutes.key_id == key_id)
        )
    ).one()
    return (int(row[0] or 0), int(row[1] or 0), int(row[2] or 0))


async def usage_totals_at(database_url: str, key_id: str) -> tuple[int, int, int]:
    """`usage_totals` from outside a served process, through a connection of its own."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            return await usage_totals(connection, key_id)
    finally:
        await engine.dispose()
