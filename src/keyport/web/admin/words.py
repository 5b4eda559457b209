"""Event names in words: audit actions and webhook event types as people read them.

The log stores machine names (`api_key.rotated`); pages and exports show these words. An
action without its own words yet is still read as words (`token.created` → "Token created").
"""

from __future__ import annotations

from keyport.domain.audit import AuditAction
from keyport.domain.webhooks import EventType

ACTION_WORDS: dict[str, str] = {
    AuditAction.SIGN_IN_SUCCEEDED: "Signed in",
    AuditAction.SIGN_IN_FAILED: "Sign-in failed",
    AuditAction.SIGNED_OUT: "Signed out",
    AuditAction.KEY_CREATED: "Key created",
    AuditAction.KEY_DEACTIVATED: "Key deactivated",
    AuditAction.KEY_ACTIVATED: "Key activated",
    AuditAction.KEY_REVOKED: "Key revoked",
    AuditAction.KEY_ROTATED: "Key rotated",
    AuditAction.KEY_UPDATED: "Key changed",
    AuditAction.KEY_RATE_LIMIT_SET: "Rate limit changed",
    AuditAction.KEY_SCOPES_SET: "Scopes changed",
    AuditAction.KEY_ALLOWED_IPS_SET: "Allowed IPs changed",
    AuditAction.WEBHOOK_ADDED: "Webhook endpoint added",
    AuditAction.WEBHOOK_REMOVED: "Webhook endpoint removed",
    AuditAction.WEBHOOK_DISABLED: "Webhook endpoint disabled",
    AuditAction.USER_CREATED: "User created",
    AuditAction.USER_UPDATED: "User changed",
    AuditAction.USER_DELETED: "User deleted",
    AuditAction.USER_PASSWORD_SET: "Password set",
    AuditAction.COMPANY_CREATED: "Company created",
    AuditAction.USER_INVITED: "User invited",
    AuditAction.INVITATION_ACCEPTED: "Invitation accepted",
    AuditAction.USER_ROLE_CHANGED: "Role changed",
    AuditAction.OWNERSHIP_TRANSFERRED: "Ownership transferred",
    AuditAction.PASSWORD_CHANGED: "Password changed",
    AuditAction.TWO_FACTOR_ENABLED: "Two-factor turned on",
    AuditAction.TWO_FACTOR_DISABLED: "Two-factor turned off",
    AuditAction.TWO_FACTOR_RESET: "Two-factor reset",
    AuditAction.TWO_FACTOR_REQUIREMENT_SET: "Two-factor rule changed",
    AuditAction.SECOND_FACTOR_FAILED: "Wrong two-factor code",
    AuditAction.RECOVERY_CODE_USED: "Recovery code used",
    AuditAction.TOKEN_CREATED: "Personal access token created",
    AuditAction.TOKEN_REVOKED: "Personal access token revoked",
    AuditAction.TOKEN_POLICY_SET: "Token policy changed",
}

EVENT_WORDS: dict[str, str] = {
    EventType.CREATED: "Key created",
    EventType.UPDATED: "Key changed",
    EventType.ROTATED: "Key rotated",
    EventType.DEACTIVATED: "Key deactivated",
    EventType.ACTIVATED: "Key activated",
    EventType.REVOKED: "Key revoked",
    EventType.EXPIRING: "Key expires soon",
    EventType.EXPIRED: "Key expired",
    EventType.TOKEN_CREATED: "Personal access token created",
    EventType.TOKEN_REVOKED: "Personal access token revoked",
    EventType.TOKEN_EXPIRING: "Personal access token expires soon",
    EventType.TOKEN_EXPIRED: "Personal access token expired",
}
_NOUNS = {"api_key": "key", "auth": "", "two_factor": "two-factor"}


def action_words(action: str) -> str:
    """`api_key.rotated` → "Key rotated"; unknown actions are spelt out the same way."""
    known = ACTION_WORDS.get(action)
    if known is not None:
        return known
    subject, _, verb = action.partition(".")
    words = " ".join(w for w in (_NOUNS.get(subject, subject), verb) if w)
    words = words.replace("_", " ").strip()
    return words[:1].upper() + words[1:] if words else action
