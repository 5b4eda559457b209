"""the index of recent-request batches holds each row's request count

A usage flush trims a key's ring to the rows holding its RING_SIZE newest requests
(db/usage_store.py `_PG_TRIM_RINGS`): a running sum of `requests` over the key's rows, newest
first. With `requests` in the index that sum is read from the index alone (PostgreSQL: an
index-only scan) instead of from the row of every batch, each on a page of its own: with
10,000 full rings a trim read about a hundred table pages a key (measured on PostgreSQL).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

OLD = "ix_key_recent_batches_key_id_id"
NEW = "ix_key_recent_batches_key_id_id_requests"


def upgrade() -> None:
    with op.batch_alter_table("key_recent_batches", schema=None) as batch_op:
        batch_op.create_index(NEW, ["key_id", "id", "requests"], unique=False)
        batch_op.drop_index(OLD)


def downgrade() -> None:
    with op.batch_alter_table("key_recent_batches", schema=None) as batch_op:
        batch_op.create_index(OLD, ["key_id", "id"], unique=False)
        batch_op.drop_index(NEW)
