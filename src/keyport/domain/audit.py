"""Audit events: who did what to which thing, when and from where."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class AuditAction(StrEnum):
    COMPANY_CREATED = "company.created"
    KEY_CREATED = "api_key.created"
    KEY_DEACTIVATED = "api_key.deactivated"
    KEY_ACTIVATED = "api_key.activated"
    KEY_REVOKED = "api_key.revoked"
    KEY_RATE_LIMIT_SET = "api_key.rate_limit_set"
    KEY_ROTATED = "api_key.rotated"
    KEY_UPDATED = "api_key.updated"
    WEBHOOK_ADDED = "webhook.added"
    WEBHOOK_REMOVED = "webhook.removed"
    WEBHOOK_DISABLED = "webhook.disabled"
    KEY_SCOPES_SET = "api_key.scopes_set"
    KEY_ALLOWED_IPS_SET = "api_key.allowed_ips_set"
    USER_CREATED = "user.created"
    USER_UPDATED = "user.updated"
    USER_DELETED = "user.deleted"
    USER_PASSWORD_SET = "user.password_set"
    SIGN_IN_SUCCEEDED = "auth.sign_in"
    SIGN_IN_FAILED = "auth.sign_in_failed"
    SIGNED_OUT = "auth.sign_out"
    SECOND_FACTOR_FAILED = "auth.second_factor_failed"
    RECOVERY_CODE_USED = "auth.recovery_code_used"
    USER_INVITED = "user.invited"
    INVITATION_ACCEPTED = "user.invitation_accepted"
    USER_ROLE_CHANGED = "user.role_changed"
    OWNERSHIP_TRANSFERRED = "company.ownership_transferred"
    PASSWORD_CHANGED = "user.password_changed"
    TWO_FACTOR_ENABLED = "user.two_factor_enabled"
    TWO_FACTOR_DISABLED = "user.two_factor_disabled"
    TWO_FACTOR_RESET = "user.two_factor_reset"
    TWO_FACTOR_REQUIREMENT_SET = "company.two_factor_requirement_set"
    TOKEN_CREATED = "personal_access_token.created"
    TOKEN_REVOKED = "personal_access_token.revoked"
    TOKEN_POLICY_SET = "company.token_policy_set"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acted: a user (through the dashboard or a key) or an operator at the CLI."""

    label: str  # "user", "api_key" or "cli"
    user_id: str | None = None
    key_id: str | None = None
    ip: str | None = None

    @classmethod
    def cli(cls) -> Actor:
        return cls("cli")

    @classmethod
    def system(cls) -> Actor:
        """Keyport itself, e.g. the webhook worker disabling a failing endpoint."""
        return cls("system")


@dataclass(frozen=True, slots=True)
class AuditEvent:
    id: int
    company_id: str | None
    action: str
    actor: Actor
    target_type: str
    target_id: str | None
    occurred_at: datetime
    details: dict[str, Any] = field(default_factory=dict)
