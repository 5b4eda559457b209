"""Migration 0007 goes down and up again on both backends, and matches db/tables.py."""

from __future__ import annotations

from alembic import command
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect

from keyport.bootstrap import Container
from keyport.db.migrate import _config
from tests.conftest import Tenant

TEAM_COLUMNS = {
    "invited_at",
    "last_sign_in_at",
    "totp_secret",
    "totp_pending_secret",
    "totp_last_step",
}


def _shape(connection: Connection) -> tuple[set[str], set[str], set[str]]:
    inspector = inspect(connection)
    users = {column["name"] for column in inspector.get_columns("users")}
    companies = {column["name"] for column in inspector.get_columns("companies")}
    return set(inspector.get_table_names()), users, companies


def _down_and_up(connection: Connection) -> list[tuple[set[str], set[str], set[str]]]:
    config = _config(connection)
    shapes = [_shape(connection)]
    command.downgrade(config, "0007-1")
    shapes.append(_shape(connection))
    command.upgrade(config, "head")
    shapes.append(_shape(connection))
    assert MigrationContext.configure(connection).get_current_revision() is not None
    return shapes


async def test_the_team_migration_goes_down_and_up_again(
    container: Container, tenant: Tenant
) -> None:
    async with container.engine.connect() as connection, connection.begin():
        shapes = await connection.run_sync(_down_and_up)

    (tables, users, companies), (old_tables, old_users, old_companies), again = shapes
    assert {"invitations", "recovery_codes"} <= tables and users >= TEAM_COLUMNS
    assert "require_two_factor" in companies
    assert not {"invitations", "recovery_codes"} & old_tables
    assert not TEAM_COLUMNS & old_users and "require_two_factor" not in old_companies
    assert again == shapes[0]
