"""team: invitations, two-factor sign-in, last sign-in, the company's 2FA requirement

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import keyport.db.types

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # ADD COLUMN keeps the tables (and the foreign keys pointing at them) on SQLite.
    op.add_column("users", sa.Column("invited_at", keyport.db.types.UtcDateTime(), nullable=True))
    op.add_column(
        "users", sa.Column("last_sign_in_at", keyport.db.types.UtcDateTime(), nullable=True)
    )
    op.add_column("users", sa.Column("totp_secret", sa.String(length=255), nullable=True))
    op.add_column("users", sa.Column("totp_pending_secret", sa.String(length=255), nullable=True))
    op.add_column("users", sa.Column("totp_last_step", sa.BigInteger(), nullable=True))
    op.add_column(
        "companies",
        sa.Column("require_two_factor", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "invitations",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("company_id", sa.String(length=36), nullable=False),
        sa.Column("created_by", sa.String(length=36), nullable=True),
        sa.Column("created_at", keyport.db.types.UtcDateTime(), nullable=False),
        sa.Column("expires_at", keyport.db.types.UtcDateTime(), nullable=False),
        sa.Column("used_at", keyport.db.types.UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_invitations_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_invitations_company_id_companies")
        ),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_invitations")),
    )
    op.create_index("ix_invitations_user_id", "invitations", ["user_id"])
    op.create_table(
        "recovery_codes",
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("used_at", keyport.db.types.UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_recovery_codes_user_id_users")
        ),
        sa.PrimaryKeyConstraint("user_id", "digest", name=op.f("pk_recovery_codes")),
    )


def downgrade() -> None:
    op.drop_table("recovery_codes")
    op.drop_index("ix_invitations_user_id", table_name="invitations")
    op.drop_table("invitations")
    # Plain DROP COLUMN on both backends: a batch copy of `companies` or `users` on SQLite
    # would drop a table that other rows still reference.
    op.execute("ALTER TABLE companies DROP COLUMN require_two_factor")
    for column in (
        "totp_last_step",
        "totp_pending_secret",
        "totp_secret",
        "last_sign_in_at",
        "invited_at",
    ):
        op.execute(f"ALTER TABLE users DROP COLUMN {column}")
