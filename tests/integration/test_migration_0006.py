"""Migration 0006 (lifecycle tables): down and up again on both backends, matching tables.py."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect

from keyport.bootstrap import Container
from keyport.db.migrate import _config
from keyport.db.tables import metadata

LIFECYCLE_TABLES = {
    "background_leases",
    "webhook_endpoints",
    "webhook_events",
    "webhook_deliveries",
    "key_expiry_notices",
}


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def _lifecycle_differences(connection: Connection) -> list[object]:
    found = compare_metadata(MigrationContext.configure(connection), metadata)
    return [d for d in found if any(t in repr(d) for t in LIFECYCLE_TABLES)]


async def test_0006_goes_down_and_up_and_matches_the_model(container: Container) -> None:
    async with container.engine.connect() as connection:
        async with connection.begin():
            await connection.run_sync(lambda c: command.downgrade(_config(c), "0005"))
        async with connection.begin():
            assert not LIFECYCLE_TABLES & await connection.run_sync(_tables)
        async with connection.begin():
            await connection.run_sync(lambda c: command.upgrade(_config(c), "0006"))
        async with connection.begin():
            assert await connection.run_sync(_tables) >= LIFECYCLE_TABLES
            assert await connection.run_sync(_lifecycle_differences) == []
