"""Migrations 0008 (usage tables without foreign keys), 0009 (recent requests in batches) and
0010 (the ring index holds request counts) keep every usage row, go down and up again on both
backends, and match db/tables.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect, select

from keyport.bootstrap import Container
from keyport.db.migrate import _config
from keyport.db.tables import key_recent_batches, key_sightings, key_usage_minutes, metadata
from keyport.db.usage_queries import SqlUsageReader
from keyport.domain.usage import RecentRequest
from tests.conftest import Tenant

USAGE_TABLES = (key_usage_minutes, key_recent_batches, key_sightings)
TABLES_AT_0008 = ("key_usage_minutes", "key_recent_requests", "key_sightings")
# key_recent_requests as 0003 made it and 0009 replaced it: one row per request.
requests_at_0008 = sa.table(
    "key_recent_requests",
    *(
        sa.column(name)
        for name in (
            "key_id",
            "request_id",
            "method",
            "path",
            "route",
            "status",
            "latency_ms",
            "client_ip",
            "user_agent",
            "acting_user_id",
            "refusal",
        )
    ),
    sa.column("occurred_at", sa.DateTime()),
)


def _foreign_keys(connection: Connection) -> dict[str, list[str]]:
    inspector = inspect(connection)
    return {
        table: [fk["referred_table"] for fk in inspector.get_foreign_keys(table)]
        for table in TABLES_AT_0008
    }


def _usage_differences(connection: Connection) -> list[object]:
    found = compare_metadata(MigrationContext.configure(connection), metadata)
    return [d for d in found if any(t.name in repr(d) for t in USAGE_TABLES)]


def _downgrade(connection: Connection, revision: str) -> None:
    command.downgrade(_config(connection), revision)


def _upgrade(connection: Connection, revision: str) -> None:
    command.upgrade(_config(connection), revision)


async def test_0008_drops_the_usage_foreign_keys_and_keeps_the_rows(
    container: Container, tenant: Tenant
) -> None:
    async with container.engine.connect() as connection:
        async with connection.begin():
            await connection.run_sync(_downgrade, "0007")
        async with connection.begin():
            assert await connection.run_sync(_foreign_keys) == {
                table: ["api_keys"] for table in TABLES_AT_0008
            }
            await connection.execute(
                key_usage_minutes.insert().values(
                    key_id=tenant.key_id, minute=1, success=3, client_error=2, server_error=1
                )
            )
        async with connection.begin():
            await connection.run_sync(_upgrade, "0008")
        async with connection.begin():
            assert await connection.run_sync(_foreign_keys) == {t: [] for t in TABLES_AT_0008}
        async with connection.begin():
            await connection.run_sync(_upgrade, "head")
        async with connection.begin():
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


def _row(key_id: str, n: int, at: datetime) -> dict[str, object]:
    return {
        "key_id": key_id,
        "occurred_at": at.replace(tzinfo=None),
        "request_id": f"r{n}",
        "method": "GET",
        "path": f"/v4/user/{n}",
        "route": "/v4/user/{user_id}" if n % 2 else None,
        "status": 200 + n,
        "latency_ms": 1.25 * n,
        "client_ip": "192.0.2.1" if n % 2 else None,
        "user_agent": "app/1 ✓" if n % 2 else None,
        "acting_user_id": "u" if n % 2 else None,
        "refusal": "deactivated" if n == 2 else None,
    }


async def test_0009_turns_each_key_s_recent_requests_into_one_batch_and_back(
    container: Container, tenant: Tenant, other_tenant: Tenant
) -> None:
    start = datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=UTC)
    rows = [
        *(_row(tenant.key_id, n, start + timedelta(seconds=n)) for n in range(3)),
        _row(other_tenant.key_id, 7, start),
    ]
    ours = (tenant.key_id, other_tenant.key_id)
    async with container.engine.connect() as connection:
        async with connection.begin():
            await connection.run_sync(_downgrade, "0008")
        async with connection.begin():
            await connection.execute(requests_at_0008.insert(), rows)
        async with connection.begin():
            await connection.run_sync(_upgrade, "head")
        async with connection.begin():
            assert await connection.run_sync(_usage_differences) == []
            batches = await connection.execute(
                select(key_recent_batches.c.key_id, key_recent_batches.c.requests)
                .where(key_recent_batches.c.key_id.in_(ours))
                .order_by(key_recent_batches.c.id)
            )
            assert sorted(batches.all()) == sorted([(tenant.key_id, 3), (other_tenant.key_id, 1)])

    recent = await SqlUsageReader(container.engine).recent(tenant.key_id, 10)
    expected = []
    for n in (2, 1, 0):
        fields = _row(tenant.key_id, n, start + timedelta(seconds=n))
        at = fields.pop("occurred_at")
        expected.append(RecentRequest(at=at.replace(tzinfo=UTC), **fields))  # type: ignore[arg-type, attr-defined]
    assert recent == expected

    async with container.engine.connect() as connection:
        async with connection.begin():
            await connection.run_sync(_downgrade, "0008")
        async with connection.begin():
            back = await connection.execute(
                select(requests_at_0008)
                .where(requests_at_0008.c.key_id.in_(ours))
                .order_by(requests_at_0008.c.key_id, requests_at_0008.c.request_id)
            )
            assert [dict(row._mapping) for row in back] == sorted(
                rows, key=lambda r: (str(r["key_id"]), str(r["request_id"]))
            )
            await connection.execute(  # the tenants' usage is their own again
                requests_at_0008.delete().where(requests_at_0008.c.key_id.in_(ours))
            )
        async with connection.begin():
            await connection.run_sync(_upgrade, "head")


def _ring_indexes(connection: Connection) -> dict[str, list[str]]:
    return {
        index["name"]: [str(column) for column in index["column_names"]]
        for index in inspect(connection).get_indexes("key_recent_batches")
        if index["name"] is not None
    }


async def test_0010_puts_each_batch_s_request_count_in_the_ring_index_and_back(
    container: Container,
) -> None:
    async with container.engine.connect() as connection:
        async with connection.begin():
            await connection.run_sync(_downgrade, "0009")
        async with connection.begin():
            assert await connection.run_sync(_ring_indexes) == {
                "ix_key_recent_batches_key_id_id": ["key_id", "id"]
            }
        async with connection.begin():
            await connection.run_sync(_upgrade, "head")
        async with connection.begin():
            assert await connection.run_sync(_ring_indexes) == {
                "ix_key_recent_batches_key_id_id_requests": ["key_id", "id", "requests"]
            }
            assert await connection.run_sync(_usage_differences) == []
