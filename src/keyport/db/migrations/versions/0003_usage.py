"""usage: per-key per-minute counts, the newest requests per key, clients seen per key

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import keyport.db.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "key_usage_minutes",
        sa.Column("key_id", sa.String(length=36), nullable=False),
        sa.Column("minute", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("success", sa.Integer(), nullable=False),
        sa.Column("client_error", sa.Integer(), nullable=False),
        sa.Column("server_error", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["key_id"], ["api_keys.id"], name=op.f("fk_key_usage_minutes_key_id_api_keys")
        ),
        sa.PrimaryKeyConstraint("key_id", "minute", name=op.f("pk_key_usage_minutes")),
    )
    with op.batch_alter_table("key_usage_minutes", schema=None) as batch_op:
        batch_op.create_index("ix_key_usage_minutes_minute", ["minute"], unique=False)

    op.create_table(
        "key_recent_requests",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("key_id", sa.String(length=36), nullable=False),
        sa.Column("occurred_at", keyport.db.types.UtcDateTime(), nullable=False),
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
        sa.ForeignKeyConstraint(
            ["key_id"], ["api_keys.id"], name=op.f("fk_key_recent_requests_key_id_api_keys")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_key_recent_requests")),
    )
    with op.batch_alter_table("key_recent_requests", schema=None) as batch_op:
        batch_op.create_index("ix_key_recent_requests_key_id_id", ["key_id", "id"], unique=False)

    op.create_table(
        "key_sightings",
        sa.Column("key_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("value", sa.String(length=256), nullable=False),
        sa.Column("first_seen_at", keyport.db.types.UtcDateTime(), nullable=False),
        sa.Column("last_seen_at", keyport.db.types.UtcDateTime(), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("kind IN ('ip', 'agent')", name=op.f("ck_key_sightings_kind")),
        sa.ForeignKeyConstraint(
            ["key_id"], ["api_keys.id"], name=op.f("fk_key_sightings_key_id_api_keys")
        ),
        sa.PrimaryKeyConstraint("key_id", "kind", "value", name=op.f("pk_key_sightings")),
    )


def downgrade() -> None:
    op.drop_table("key_sightings")
    with op.batch_alter_table("key_recent_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_key_recent_requests_key_id_id")
    op.drop_table("key_recent_requests")
    with op.batch_alter_table("key_usage_minutes", schema=None) as batch_op:
        batch_op.drop_index("ix_key_usage_minutes_minute")
    op.drop_table("key_usage_minutes")
