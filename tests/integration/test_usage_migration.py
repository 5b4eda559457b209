"""Migration 0008 (usage tables without foreign keys) keeps every usage row, goes down and up
again on both backends, and matches db/tables.py."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect, select

from keyport.bootstrap import Container
from keyport.db.migrate import _config
from keyport.db.tables import key_recent_requests, key_sightings, key_usage_minutes, metadata
from tests.conftest import Tenant

USAGE_TABLES = (key_usage_minutes, key_recent_requests, key_sightings)


def _foreign_keys(connection: Connection) -> dict[str, list[str]]:
    inspector = inspect(connection)
    return {
        table.name: [fk["referred_table"] for fk in inspector.get_foreign_keys(table.name)]
        for table in USAGE_TABLES
    }


def _usage_differences(connection: Connection) -> list[object]:
    found = compare_metadata(MigrationContext.configure(connection), metadata)
    return [d for d in found if any(t.name in repr(d) for t in USAGE_TABLES)]


def _migrate(connection: Connection, revision: str) -> None:
    if revision == "0007":
        command.downgrade(_config(connection), revision)
    else:
        command.upgrade(_config(connection), revision)


async def test_0008_drops_the_usage_foreign_keys_and_keeps_the_rows(
    container: Container, tenant: Tenant
) -> None:
    async with container.engine.connect() as connection:
        async with connection.begin():
            await connection.run_sync(_migrate, "0007")
        async with connection.begin():
            assert await connection.run_sync(_foreign_keys) == {
                t.name: ["api_keys"] for t in USAGE_TABLES
            }
            await connection.execute(
                key_usage_minutes.insert().values(
                    key_id=tenant.key_id, minute=1, success=3, client_error=2, server_error=1
                )
            )
        async with connection.begin():
            await connection.run_sync(_migrate, "head")
        async with connection.begin():
            assert await connection.run_sync(_foreign_keys) == {t.name: [] for t in USAGE_TABLES}
            assert await connection.run_sync(_usage_differences) == []
            kept = await connection.execute(
                select(key_usage_minutes.c.success, key_usage_minutes.c.server_error).where(
                    key_usage_minutes.c.key_id == tenant.key_id, key_usage_minutes.c.minute == 1
                )
            )
            assert kept.all() == [(3, 1)]
            await connection.execute(  # the tenant's usage is its own again
                key_usage_minutes.delete().where(key_usage_minutes.c.key_id == tenant.key_id)
            )
