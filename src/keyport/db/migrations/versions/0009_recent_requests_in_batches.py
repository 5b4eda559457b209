"""recent requests in batches: one row per key and usage flush instead of one per request

With many keys each seeing a few requests between two usage flushes, every request became a
row of key_recent_requests: building, encoding, inserting and later trimming that row cost
more than the rest of the flush together (bench/README.md, "10,000 keys"). key_recent_batches
holds a key's requests of one flush in one row, as a JSON array of arrays (the fields of
domain.usage.RecentEntry: the moment in microseconds since the epoch, then request id, method,
path, route, status, latency in ms, client address, user agent, acting user, refusal).

Every existing row is kept: a key's rows become one batch, oldest first. Down again, every
entry becomes a row.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

KEYS_A_STEP = 500  # keys whose rows are read and written together: bounded memory
_EPOCH = datetime(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)
_FIELDS = (
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
_AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

requests_table = sa.table(
    "key_recent_requests",
    sa.column("id", sa.BigInteger()),
    sa.column("key_id", sa.String()),
    sa.column("occurred_at", sa.DateTime()),
    *(sa.column(name) for name in _FIELDS),
)
batches_table = sa.table(
    "key_recent_batches",
    sa.column("id", sa.BigInteger()),
    sa.column("key_id", sa.String()),
    sa.column("requests", sa.Integer()),
    sa.column("entries", sa.Text()),
)


def upgrade() -> None:
    op.create_table(
        "key_recent_batches",
        sa.Column("id", _AUTO_ID, autoincrement=True, nullable=False),
        sa.Column("key_id", sa.String(length=36), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("entries", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_key_recent_batches")),
    )
    with op.batch_alter_table("key_recent_batches", schema=None) as batch_op:
        batch_op.create_index("ix_key_recent_batches_key_id_id", ["key_id", "id"], unique=False)

    connection = op.get_bind()
    for key_ids in _steps(connection, requests_table):
        rows = connection.execute(
            sa.select(requests_table)
            .where(requests_table.c.key_id.in_(key_ids))
            .order_by(requests_table.c.key_id, requests_table.c.id)
        )
        entries: dict[str, list[list[Any]]] = {}
        for row in rows:
            at_us = (row.occurred_at.replace(tzinfo=None) - _EPOCH) // _MICROSECOND
            entries.setdefault(row.key_id, []).append([at_us, *(row._mapping[f] for f in _FIELDS)])
        connection.execute(
            batches_table.insert(),
            [
                {"key_id": k, "requests": len(e), "entries": json.dumps(e, separators=(",", ":"))}
                for k, e in entries.items()
            ],
        )

    with op.batch_alter_table("key_recent_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_key_recent_requests_key_id_id")
    op.drop_table("key_recent_requests")


def downgrade() -> None:
    op.create_table(  # as it was at 0008: without the foreign key
        "key_recent_requests",
        sa.Column("id", _AUTO_ID, autoincrement=True, nullable=False),
        sa.Column("key_id", sa.String(length=36), nullable=False),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.Column("request_id", sa.String(length=32), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("path", sa.String(length=256), nullable=False),
        sa.Column("route", sa.String(length=256), nullable=True),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("client_ip", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=256), nullable=True),
        sa.Column("acting_user_id", sa.String(length=36), nullable=True),
        sa.Column("refusal", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_key_recent_requests")),
    )
    with op.batch_alter_table("key_recent_requests", schema=None) as batch_op:
        batch_op.create_index("ix_key_recent_requests_key_id_id", ["key_id", "id"], unique=False)

    connection = op.get_bind()
    for key_ids in _steps(connection, batches_table):
        batches = connection.execute(
            sa.select(batches_table.c.key_id, batches_table.c.entries)
            .where(batches_table.c.key_id.in_(key_ids))
            .order_by(batches_table.c.key_id, batches_table.c.id)
        )
        rows = [
            {
                "key_id": key_id,
                "occurred_at": _EPOCH + at_us * _MICROSECOND,
                **dict(zip(_FIELDS, fields, strict=True)),
            }
            for key_id, text in batches
            for at_us, *fields in json.loads(text)
        ]
        if rows:
            connection.execute(requests_table.insert(), rows)

    with op.batch_alter_table("key_recent_batches", schema=None) as batch_op:
        batch_op.drop_index("ix_key_recent_batches_key_id_id")
    op.drop_table("key_recent_batches")


def _steps(connection: sa.Connection, table: Any) -> Iterator[Sequence[str]]:
    key_ids = sorted(connection.scalars(sa.select(table.c.key_id).distinct()))
    for start in range(0, len(key_ids), KEYS_A_STEP):
        yield key_ids[start : start + KEYS_A_STEP]
