"""a rotated key names its successor; the places each user signed in from

`api_keys.rotated_to`: the id of the key that replaced this one (NULL: never rotated). A key
that has a successor cannot rotate again, by itself or by id (services/keys/lifecycle.py).

`sign_in_places`: each place (an IPv4 address, or an IPv6 address's /64) a user signed in
from, and when last: an attempt from such a place within 30 days is spared the account-wide
cap on guesses (services/accounts/sign_in_limiter.py).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import keyport.db.types

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # ADD COLUMN keeps the table (and the foreign keys pointing at it) on SQLite.
    op.add_column("api_keys", sa.Column("rotated_to", sa.String(length=36), nullable=True))
    op.create_table(
        "sign_in_places",
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("place", sa.String(length=64), nullable=False),
        sa.Column("last_at", keyport.db.types.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_sign_in_places_user_id_users")
        ),
        sa.PrimaryKeyConstraint("user_id", "place", name=op.f("pk_sign_in_places")),
    )


def downgrade() -> None:
    op.drop_table("sign_in_places")
    # Plain DROP COLUMN: a batch copy of `api_keys` on SQLite would drop a table that other
    # rows still reference.
    op.execute("ALTER TABLE api_keys DROP COLUMN rotated_to")
