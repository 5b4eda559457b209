"""Migration 0005: existing keys keep full access; it goes down and up again on both backends."""

from __future__ import annotations

import json

from alembic import command
from sqlalchemy import Connection, text

from keyport.bootstrap import Container
from keyport.db.migrate import _config
from tests.conftest import Tenant


def _step(connection: Connection, revision: str) -> None:
    config = _config(connection)
    if revision == "0004":
        command.downgrade(config, revision)
    else:
        command.upgrade(config, revision)


async def test_keys_from_before_0005_get_full_access_and_no_allowlist(
    container: Container, tenant: Tenant
) -> None:
    async with container.engine.connect() as connection:
        async with connection.begin():
            await connection.run_sync(_step, "0004")
        async with connection.begin():
            columns = await connection.execute(text("SELECT * FROM api_keys"))
            assert "scopes" not in list(columns.keys())
        async with connection.begin():
            await connection.run_sync(_step, "0005")
        row = (
            await connection.execute(
                text("SELECT scopes, allowed_ips FROM api_keys WHERE id = :id"),
                {"id": tenant.key_id},
            )
        ).one()
    # SQLite hands the JSON back as text, asyncpg decoded.
    assert [json.loads(v) if isinstance(v, str) else v for v in row] == [["*"], []]
