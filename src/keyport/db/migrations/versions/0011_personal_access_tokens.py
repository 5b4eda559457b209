"""personal access tokens, their expiry notices, and each company's token policy

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import keyport.db.types

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN on both backends: a batch copy of `companies` on SQLite would drop a
    # table that other rows still reference.
    op.add_column(
        "companies",
        sa.Column("tokens_allowed", sa.Boolean(), nullable=False, server_default=sa.true()),
    )
    op.add_column("companies", sa.Column("token_max_days", sa.Integer(), nullable=True))
    op.add_column(
        "companies",
        sa.Column("token_allowed_ips", sa.JSON(), nullable=False, server_default=sa.text("'[]'")),
    )
    op.create_table(
        "personal_access_tokens",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("company_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("hint", sa.String(length=16), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False, server_default=sa.text("'[\"*\"]'")),
        sa.Column("created_at", keyport.db.types.UtcDateTime(), nullable=False),
        sa.Column("expires_at", keyport.db.types.UtcDateTime(), nullable=True),
        sa.Column("revoked_at", keyport.db.types.UtcDateTime(), nullable=True),
        sa.Column("revoked_by", sa.String(length=36), nullable=True),
        sa.Column("revoke_reason", sa.String(length=200), nullable=True),
        sa.Column("notice_dismissed_at", keyport.db.types.UtcDateTime(), nullable=True),
        sa.Column("last_used_at", keyport.db.types.UtcDateTime(), nullable=True),
        sa.Column("last_used_ip", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_personal_access_tokens_company_id_companies"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_personal_access_tokens_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_personal_access_tokens")),
        sa.UniqueConstraint("digest", name=op.f("uq_personal_access_tokens_digest")),
    )
    op.create_index(
        "ix_personal_access_tokens_user_created",
        "personal_access_tokens",
        ["user_id", "created_at"],
    )
    op.create_index(
        "ix_personal_access_tokens_company_created",
        "personal_access_tokens",
        ["company_id", "created_at"],
    )
    op.create_table(
        "token_expiry_notices",
        sa.Column("token_id", sa.String(length=36), nullable=False),
        sa.Column("notice", sa.String(length=16), nullable=False),
        sa.Column("sent_at", keyport.db.types.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["token_id"],
            ["personal_access_tokens.id"],
            name=op.f("fk_token_expiry_notices_token_id_personal_access_tokens"),
        ),
        sa.PrimaryKeyConstraint("token_id", "notice", name=op.f("pk_token_expiry_notices")),
    )


def downgrade() -> None:
    op.drop_table("token_expiry_notices")
    op.drop_index("ix_personal_access_tokens_company_created", "personal_access_tokens")
    op.drop_index("ix_personal_access_tokens_user_created", "personal_access_tokens")
    op.drop_table("personal_access_tokens")
    for column in ("token_allowed_ips", "token_max_days", "tokens_allowed"):
        op.execute(f"ALTER TABLE companies DROP COLUMN {column}")
