"""key scopes and IP allowlists: what a key may do and where from (docs/contract.md §6)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing keys get full access and no allowlist: they keep working exactly as before.
    op.add_column(
        "api_keys",
        sa.Column("scopes", sa.JSON(), nullable=False, server_default=sa.text("'[\"*\"]'")),
    )
    op.add_column(
        "api_keys",
        sa.Column("allowed_ips", sa.JSON(), nullable=False, server_default=sa.text("'[]'")),
    )


def downgrade() -> None:
    op.drop_column("api_keys", "allowed_ips")
    op.drop_column("api_keys", "scopes")
