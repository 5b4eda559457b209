"""The schema, as SQLAlchemy Core tables. Alembic migrations must match this file."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
    text,
    true,
)

from keyport.db.types import UtcDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# BigInteger autoincrement ids that SQLite also numbers by itself.
AutoId = BigInteger().with_variant(Integer(), "sqlite")

companies = Table(
    "companies",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    # Owners and admins must sign in with a second factor (migration 0007).
    Column("require_two_factor", Boolean(), nullable=False, server_default=false()),
    # Personal access token policy (migration 0011): allowed at all, the longest lifetime a
    # new token may have (NULL: none), and the networks every token may be used from.
    Column("tokens_allowed", Boolean(), nullable=False, server_default=true()),
    Column("token_max_days", Integer, nullable=True),
    Column("token_allowed_ips", JSON, nullable=False, server_default=text("'[]'")),
)

users = Table(
    "users",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("company_id", String(36), ForeignKey("companies.id"), nullable=False),
    Column("email", String(254), nullable=False),
    Column("given_name", String(100), nullable=False),
    Column("family_name", String(100), nullable=False),
    Column("slug", String(100), nullable=True),
    Column("timezone", String(64), nullable=False),
    Column("language", String(8), nullable=False),
    Column("role", String(16), nullable=False),
    Column("user_type", String(16), nullable=False),
    Column("password_hash", String(255), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("deleted_at", UtcDateTime(), nullable=True),
    # Migration 0007: invited (no password yet), last sign-in, two-factor sign-in. The TOTP
    # secrets are Fernet tokens (services/accounts/secret_box.py), never the secret itself.
    Column("invited_at", UtcDateTime(), nullable=True),
    Column("last_sign_in_at", UtcDateTime(), nullable=True),
    Column("totp_secret", String(255), nullable=True),
    Column("totp_pending_secret", String(255), nullable=True),
    Column("totp_last_step", BigInteger, nullable=True),  # the newest code accepted: no replay
    CheckConstraint("role IN ('owner', 'admin', 'member')", name="role"),
    CheckConstraint(
        "user_type IN ('standard', 'resource', 'api-platform', 'partner')", name="user_type"
    ),
    Index("ix_users_company_id", "company_id"),
    # Emails and slugs are unique among users that are not deleted.
    Index(
        "uq_users_email_live",
        "email",
        unique=True,
        sqlite_where=text("deleted_at IS NULL"),
        postgresql_where=text("deleted_at IS NULL"),
    ),
    Index(
        "uq_users_slug_live",
        "slug",
        unique=True,
        sqlite_where=text("deleted_at IS NULL AND slug IS NOT NULL"),
        postgresql_where=text("deleted_at IS NULL AND slug IS NOT NULL"),
    ),
    # One owner per company.
    Index(
        "uq_users_owner",
        "company_id",
        unique=True,
        sqlite_where=text("role = 'owner' AND deleted_at IS NULL"),
        postgresql_where=text("role = 'owner' AND deleted_at IS NULL"),
    ),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("company_id", String(36), ForeignKey("companies.id"), nullable=False),
    Column("name", String(100), nullable=True),
    Column("digest", String(64), nullable=False, unique=True),
    Column("hint", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("created_by", String(36), nullable=True),
    Column("last_used_at", UtcDateTime(), nullable=True),
    Column("last_used_ip", String(64), nullable=True),
    # The key's own requests a minute (domain.rate_limits); NULL: the configured default.
    Column("rate_limit", Integer, nullable=True),
    # JSON lists (migration 0005): domain.scopes texts, and canonical networks (empty: anywhere).
    Column("scopes", JSON, nullable=False, server_default=text("'[\"*\"]'")),
    Column("allowed_ips", JSON, nullable=False, server_default=text("'[]'")),
    # The key that replaced this one by rotation (migration 0012); NULL: never rotated.
    Column("rotated_to", String(36), nullable=True),
    CheckConstraint("status IN ('active', 'inactive', 'revoked')", name="status"),
    CheckConstraint("rate_limit IS NULL OR rate_limit BETWEEN 1 AND 1000000", name="rate_limit"),
    Index("ix_api_keys_company_created", "company_id", "created_at"),
)
# Migration 0004 adds a trigger on both backends: a revoked key's status never changes again.

# Personal access tokens (migration 0011): a user's own credential, found by `digest`
# (SHA-256 of the whole token, as for keys); the token itself is never stored. `revoked_by`
# names who revoked it when that was not its own user, and `revoke_reason` why: the user
# sees a notice until `notice_dismissed_at`.
personal_access_tokens = Table(
    "personal_access_tokens",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("company_id", String(36), ForeignKey("companies.id"), nullable=False),
    Column("user_id", String(36), ForeignKey("users.id"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("digest", String(64), nullable=False, unique=True),
    Column("hint", String(16), nullable=False),
    Column("scopes", JSON, nullable=False, server_default=text("'[\"*\"]'")),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=True),  # NULL: never
    Column("revoked_at", UtcDateTime(), nullable=True),
    Column("revoked_by", String(36), nullable=True),
    Column("revoke_reason", String(200), nullable=True),
    Column("notice_dismissed_at", UtcDateTime(), nullable=True),
    Column("last_used_at", UtcDateTime(), nullable=True),
    Column("last_used_ip", String(64), nullable=True),
    Index("ix_personal_access_tokens_user_created", "user_id", "created_at"),
    Index("ix_personal_access_tokens_company_created", "company_id", "created_at"),
)

# Expiry reminders already sent for tokens, as key_expiry_notices for keys.
token_expiry_notices = Table(
    "token_expiry_notices",
    metadata,
    Column("token_id", String(36), ForeignKey("personal_access_tokens.id"), primary_key=True),
    Column("notice", String(16), primary_key=True),
    Column("sent_at", UtcDateTime(), nullable=False),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("company_id", String(36), nullable=True),
    Column("action", String(64), nullable=False),
    Column("actor_label", String(16), nullable=False),
    Column("actor_user_id", String(36), nullable=True),
    Column("actor_key_id", String(36), nullable=True),
    Column("target_type", String(32), nullable=False),
    Column("target_id", String(64), nullable=True),
    Column("occurred_at", UtcDateTime(), nullable=False),
    Column("ip", String(64), nullable=True),
    Column("details", JSON(), nullable=False),
    Index("ix_audit_events_company_time", "company_id", "occurred_at"),
    Index("ix_audit_events_target", "target_id"),
)

# A log of cache-relevant changes; every process polls it to evict what others changed.
cache_invalidations = Table(
    "cache_invalidations",
    metadata,
    Column("seq", AutoId, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),
    Column("target", String(64), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

# Dashboard sign-ins. `id` is the SHA-256 of the cookie's token: a copy of this table lets
# nobody act as anyone. The CSRF token is the session's synchronizer token.
admin_sessions = Table(
    "admin_sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("form_nonce", String(64), nullable=True),
    Column("ip", String(64), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("last_seen_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Index("ix_admin_sessions_user_id", "user_id"),
    Index("ix_admin_sessions_expires_at", "expires_at"),
)

# One-time invitation links: only the SHA-256 of the link's token is kept.
invitations = Table(
    "invitations",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id"), nullable=False),
    Column("company_id", String(36), ForeignKey("companies.id"), nullable=False),
    Column("created_by", String(36), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("used_at", UtcDateTime(), nullable=True),
    Index("ix_invitations_user_id", "user_id"),
)

# Where each user signed in from (migration 0012): a place is an IPv4 address or an IPv6
# address's /64 (domain/client_places.py). An attempt from a place the account signed in from
# lately is spared the account-wide cap on guesses (services/accounts/sign_in_limiter.py).
sign_in_places = Table(
    "sign_in_places",
    metadata,
    Column("user_id", String(36), ForeignKey("users.id"), primary_key=True),
    Column("place", String(64), primary_key=True),
    Column("last_at", UtcDateTime(), nullable=False),
)

# Two-factor recovery codes, as SHA-256 digests; each works once.
recovery_codes = Table(
    "recovery_codes",
    metadata,
    Column("user_id", String(36), ForeignKey("users.id"), primary_key=True),
    Column("digest", String(64), primary_key=True),
    Column("used_at", UtcDateTime(), nullable=True),
)

# API key usage (services.observability.usage_recorder), written in batches, never on the request
# path. `key_id` names an api_keys row without a foreign key: usage is recorded only for a key
# that was just authenticated and keys are never deleted, so the constraint never refused a row,
# while checking it cost PostgreSQL a lookup and a row lock on api_keys for every row written
# (migration 0008). Deleting keys one day means deleting their usage rows first, by hand.
# Requests per key and minute by status class; `minute` counts whole minutes since the Unix
# epoch, so hours and days are integer divisions on every backend.
key_usage_minutes = Table(
    "key_usage_minutes",
    metadata,
    Column("key_id", String(36), primary_key=True),
    Column("minute", Integer, primary_key=True, autoincrement=False),
    Column("success", Integer, nullable=False),  # 1xx-3xx
    Column("client_error", Integer, nullable=False),  # 4xx
    Column("server_error", Integer, nullable=False),  # 5xx
    Index("ix_key_usage_minutes_minute", "minute"),
)

# The newest requests of each key (its ring: the newest RING_SIZE are shown). A usage flush
# writes one row per key holding that key's requests since the previous flush, oldest first,
# as a JSON array of RecentEntry arrays: with many keys each seeing a few requests a flush, a
# row per request cost more to build, encode, insert and trim than the rest of the flush
# (bench/README.md, "10,000 keys"). Trimmed per key once newer rows hold RING_SIZE requests.
key_recent_batches = Table(
    "key_recent_batches",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("key_id", String(36), nullable=False),
    Column("requests", Integer, nullable=False),  # entries in `entries`
    Column("entries", Text, nullable=False),
    # `requests` too: a ring's trim sums it newest first from the index alone (migration 0010).
    Index("ix_key_recent_batches_key_id_id_requests", "key_id", "id", "requests"),
)

# Every client address and user agent a key was used from: first and last seen, how often.
key_sightings = Table(
    "key_sightings",
    metadata,
    Column("key_id", String(36), primary_key=True),
    Column("kind", String(8), primary_key=True),
    Column("value", String(256), primary_key=True),
    Column("first_seen_at", UtcDateTime(), nullable=False),
    Column("last_seen_at", UtcDateTime(), nullable=False),
    Column("requests", BigInteger, nullable=False),
    CheckConstraint("kind IN ('ip', 'agent')", name="kind"),
)

# "One process at a time" for background loops (services/runtime/singleton_loop.py): a loop runs
# while its
# process holds the row's lease; a crashed holder's lease simply runs out.
background_leases = Table(
    "background_leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(64), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
)

# Webhook endpoints per company. `secret` is the signing secret sealed under the server secret
# (a Fernet token, services/accounts/secret_box.py; ~165 characters): the worker opens it to sign, a
# copy of the database alone holds no signing secret. It never reaches a log, a payload or
# a page after the one that creates it.
webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("company_id", String(36), ForeignKey("companies.id"), nullable=False),
    Column("url", String(2000), nullable=False),
    Column("secret", String(255), nullable=False),
    Column("events", JSON(), nullable=False),  # event types; [] means every type
    Column("created_at", UtcDateTime(), nullable=False),
    Column("failing_since", UtcDateTime(), nullable=True),  # first failure since a success
    Column("disabled_at", UtcDateTime(), nullable=True),
    Column("removed_at", UtcDateTime(), nullable=True),
    Index("ix_webhook_endpoints_company_id", "company_id"),
)

# The outbox: one row per event, written in the transaction of the change it reports.
webhook_events = Table(
    "webhook_events",
    metadata,
    Column("id", String(40), primary_key=True),  # the `webhook-id`, the same on every retry
    Column("company_id", String(36), nullable=False),
    Column("type", String(64), nullable=False),
    Column("payload", JSON(), nullable=False),  # {"type", "timestamp", "data"}
    Column("created_at", UtcDateTime(), nullable=False),
    Index("ix_webhook_events_company_created", "company_id", "created_at"),
)

# One delivery of one event to one endpoint, and how it went.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("event_id", String(40), ForeignKey("webhook_events.id"), nullable=False),
    Column("endpoint_id", String(36), ForeignKey("webhook_endpoints.id"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UtcDateTime(), nullable=True),
    Column("last_attempt_at", UtcDateTime(), nullable=True),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", String(200), nullable=True),
    CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status"),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    Index("ix_webhook_deliveries_endpoint_id", "endpoint_id", "id"),
)

# Expiry reminders already sent: the primary key makes each fire at most once per key.
key_expiry_notices = Table(
    "key_expiry_notices",
    metadata,
    Column("key_id", String(36), ForeignKey("api_keys.id"), primary_key=True),
    Column("notice", String(16), primary_key=True),
    Column("sent_at", UtcDateTime(), nullable=False),
)

__all__ = [
    "admin_sessions",
    "api_keys",
    "audit_events",
    "background_leases",
    "cache_invalidations",
    "companies",
    "invitations",
    "key_expiry_notices",
    "key_recent_batches",
    "key_sightings",
    "key_usage_minutes",
    "metadata",
    "personal_access_tokens",
    "recovery_codes",
    "sign_in_places",
    "token_expiry_notices",
    "users",
    "webhook_deliveries",
    "webhook_endpoints",
    "webhook_events",
]
