"""usage tables without foreign keys: a usage row is written for a key that answered a request

Every row of key_usage_minutes, key_recent_requests and key_sightings names a key that was
just authenticated, and keys are never deleted (a revoked key keeps its row and history), so
the foreign keys to api_keys never refused a row. They cost PostgreSQL a lookup and a row lock
on api_keys for every row written: with many keys in use, about half of what a recent request's
row costs to insert (bench/README.md, "10,000 keys").

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

USAGE_TABLES = ("key_usage_minutes", "key_recent_requests", "key_sightings")


def _constraint(table: str) -> str:
    return f"fk_{table}_key_id_api_keys"


def upgrade() -> None:
    # On SQLite the batch recreates each table (nothing refers to these tables, so the copy
    # breaks no reference); on PostgreSQL it is an ALTER TABLE ... DROP CONSTRAINT.
    for table in USAGE_TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(_constraint(table), type_="foreignkey")


def downgrade() -> None:
    for table in USAGE_TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_foreign_key(_constraint(table), "api_keys", ["key_id"], ["id"])
