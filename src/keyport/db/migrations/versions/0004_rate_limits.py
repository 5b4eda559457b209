"""rate limits: a key's own limit; the database refuses to bring a revoked key back

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_LIMIT_CHECK = "rate_limit IS NULL OR rate_limit BETWEEN 1 AND 1000000"
_REVOKED_IS_FINAL = "a revoked API key can never change status again"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # ADD COLUMN keeps the table (and the foreign keys pointing at it); SQLite accepts a
        # CHECK there, but not as a separate ALTER.
        op.execute(
            "ALTER TABLE api_keys ADD COLUMN rate_limit INTEGER "
            f"CONSTRAINT ck_api_keys_rate_limit CHECK ({_LIMIT_CHECK})"
        )
        op.execute(
            "CREATE TRIGGER api_keys_revoked_is_final BEFORE UPDATE OF status ON api_keys "
            "WHEN OLD.status = 'revoked' AND NEW.status <> 'revoked' "
            f"BEGIN SELECT RAISE(ABORT, '{_REVOKED_IS_FINAL}'); END"
        )
        return
    op.execute("ALTER TABLE api_keys ADD COLUMN rate_limit INTEGER")
    op.execute(f"ALTER TABLE api_keys ADD CONSTRAINT ck_api_keys_rate_limit CHECK ({_LIMIT_CHECK})")
    op.execute(
        "CREATE FUNCTION api_keys_revoked_is_final() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN IF OLD.status = 'revoked' AND NEW.status <> 'revoked' THEN "
        f"RAISE EXCEPTION '{_REVOKED_IS_FINAL}' USING ERRCODE = 'check_violation'; "
        "END IF; RETURN NEW; END $$"
    )
    op.execute(
        "CREATE TRIGGER api_keys_revoked_is_final BEFORE UPDATE OF status ON api_keys "
        "FOR EACH ROW EXECUTE FUNCTION api_keys_revoked_is_final()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS api_keys_revoked_is_final")
        op.execute("ALTER TABLE api_keys DROP COLUMN rate_limit")
        return
    op.execute("DROP TRIGGER IF EXISTS api_keys_revoked_is_final ON api_keys")
    op.execute("DROP FUNCTION IF EXISTS api_keys_revoked_is_final()")
    op.execute("ALTER TABLE api_keys DROP CONSTRAINT IF EXISTS ck_api_keys_rate_limit")
    op.execute("ALTER TABLE api_keys DROP COLUMN rate_limit")
