"""Personal access tokens: a user's own credential, `rgo-` + 32 characters, acting as that user.

A token is `rgo-<random><checksum>`: 26 base62 characters from `secrets` and the 6-character
base62 CRC32 of `rgo-<random>` — the checksum rule of company keys (domain/keys.py), so a
mistyped token is refused before any I/O and `keyport scan` finds leaked ones. Unlike a key,
the token holds no id: it is found by its SHA-256 alone, and its public id lives in its record.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from keyport.domain import scopes as scope_rules
from keyport.domain.display_text import display_text_problem
from keyport.domain.errors import Conflict, ValidationFailed
from keyport.domain.key_events import iso_utc
from keyport.domain.keys import BASE62, CHECKSUM_LENGTH, checksum, validate_scopes
from keyport.domain.keys import digest as digest  # the key's rule: sha256 of the whole token

PREFIX = "rgo-"
RANDOM_LENGTH = 26  # 26 * log2(62) ≈ 155 bits
TOKEN_LENGTH = len(PREFIX) + RANDOM_LENGTH + CHECKSUM_LENGTH
HINT_CHARS = 4
# What the dashboard and CLI offer; any whole number of days ≥ 1 within the company's maximum.
EXPIRY_PRESETS = (7, 30, 60, 90, 365)
MAX_DAYS = 3650  # no policy: a "date" or `--days` still ends within ten years
TOKEN_PATTERN = re.compile(r"rgo-[0-9A-Za-z]{32}(?![0-9A-Za-z])")
_BASE62_SET = frozenset(BASE62)


class TokenState(StrEnum):
    """What a token answers now (revoked > expired > disabled by the company's policy)."""

    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"
    DISABLED = "disabled"

    @property
    def label(self) -> str:
        return self.value.capitalize()


def generate_token() -> str:
    body = PREFIX + "".join(secrets.choice(BASE62) for _ in range(RANDOM_LENGTH))
    return body + checksum(body)


def is_token(token: str) -> bool:
    """Well formed with a valid checksum. No I/O."""
    return (
        len(token) == TOKEN_LENGTH
        and token.startswith(PREFIX)
        and _BASE62_SET.issuperset(token[len(PREFIX) :])
        and checksum(token[:-CHECKSUM_LENGTH]) == token[-CHECKSUM_LENGTH:]
    )


def hint(token: str) -> str:
    return token[: len(PREFIX) + HINT_CHARS] + "…"


@dataclass(frozen=True, slots=True)
class TokenPolicy:
    """A company's rules for its users' tokens."""

    allow: bool = True
    max_days: int | None = None  # None: no maximum
    allowed_ips: tuple[str, ...] = ()  # canonical networks; empty: anywhere


@dataclass(frozen=True, slots=True)
class PersonalToken:
    """A token record as the dashboard, CLI and API see it: never the token or its digest."""

    id: str
    company_id: str
    user_id: str
    name: str
    hint: str
    scopes: tuple[str, ...]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None = None
    revoked_by: str | None = None  # the user who revoked it, when not its own user
    revoke_reason: str | None = None  # shown to the token's user until dismissed
    notice_dismissed: bool = False
    last_used_at: datetime | None = None
    last_used_ip: str | None = None

    def state(self, now: datetime, policy_allows: bool = True) -> TokenState:
        if self.revoked_at is not None:
            return TokenState.REVOKED
        if self.expires_at is not None and self.expires_at <= now:
            return TokenState.EXPIRED
        return TokenState.ACTIVE if policy_allows else TokenState.DISABLED

    def is_live(self, now: datetime) -> bool:
        """Neither revoked nor expired: its name is taken among its user's tokens."""
        return self.state(now) is TokenState.ACTIVE


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """The one moment the full token exists outside its user's hands."""

    record: PersonalToken
    token: str


def validate_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValidationFailed.single("name", "is required")
    cleaned = name.strip()
    problem = display_text_problem(cleaned, required=True)
    if problem is not None:
        raise ValidationFailed.single("name", problem)
    return cleaned


def validate_token_scopes(values: object) -> tuple[str, ...]:
    """A key's scope rule, except that a token never holds `keys:manage`."""
    valid = validate_scopes(values or None)
    if scope_rules.KEYS_MANAGE in valid:
        raise ValidationFailed.single(
            "scopes", "keys:manage cannot be given to a personal access token"
        )
    return valid


def validate_days(days: object) -> int | None:
    """A whole number of days ≥ 1, or None for no expiry."""
    if days is None:
        return None
    if isinstance(days, str) and days.strip().isascii() and days.strip().isdigit():
        days = int(days.strip())
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise ValidationFailed.single(
            "expiresInDays", f"must be a whole number of days from 1 to {MAX_DAYS}"
        )
    return days


def expiry(now: datetime, days: int | None, policy: TokenPolicy) -> datetime | None:
    """When a new token ends: refused when the policy's maximum is shorter."""
    if policy.max_days is not None and (days is None or days > policy.max_days):
        raise ValidationFailed.single(
            "expiresInDays",
            f"must be at most {policy.max_days} days: the company's maximum lifetime",
        )
    return None if days is None else now + timedelta(days=days)


def check_creatable(policy: TokenPolicy) -> None:
    if not policy.allow:
        raise TokensDisabled()


def validate_max_days(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DAYS:
        raise ValidationFailed.single("maxDays", f"must be a whole number from 1 to {MAX_DAYS}")
    return value


class TokensDisabled(Conflict):
    message = "Personal access tokens are disabled for this company"


def days_between(start: datetime, end: datetime | None) -> int | None:
    """A token's whole lifetime in days (rounded up), for regenerating it alike."""
    if end is None:
        return None
    seconds = (end - start).total_seconds()
    return max(1, -(-int(seconds) // 86400))


def token_object(token: PersonalToken, now: datetime, policy_allows: bool) -> dict[str, object]:
    """A token as the management API answers it and webhooks carry it: never the secret."""
    return {
        "id": token.id,
        "name": token.name,
        "userId": token.user_id,
        "status": token.state(now, policy_allows).value,
        "scopes": list(token.scopes),
        "createdAt": iso_utc(token.created_at),
        "expiresAt": iso_utc(token.expires_at) if token.expires_at else None,
        "lastUsedAt": iso_utc(token.last_used_at) if token.last_used_at else None,
        "hint": token.hint,
        "leak": None,
    }
