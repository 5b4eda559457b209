"""Platform API keys: their wire format, checksum, digest and lifecycle rules.

A key is `ak_live:<key-id>:<random><checksum>`:
- `<key-id>` is the key record's UUID, public;
- `<random>` is 44 base62 characters from `secrets` (over 256 bits);
- `<checksum>` is the CRC32 of everything before it, as 6 base62 characters, so a mistyped or
  made-up key is refused before any I/O and leaked keys can be found with few false positives.
"""

from __future__ import annotations

import binascii
import hashlib
import re
import secrets
import string
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from keyport.domain import ip_allowlists, scopes
from keyport.domain.display_text import MAX_DISPLAY_LENGTH, display_text_problem
from keyport.domain.errors import InvalidKeyTransition, ValidationFailed
from keyport.domain.rate_limits import MAX_RATE
from keyport.domain.scopes import DEFAULT_SCOPES

PREFIX = "ak_live:"
BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
RANDOM_LENGTH = 44  # 44 * log2(62) ≈ 262 bits
CHECKSUM_LENGTH = 6  # 62**6 > 2**32, so any CRC32 fits
SECRET_LENGTH = RANDOM_LENGTH + CHECKSUM_LENGTH
_UUID_LENGTH = 36
KEY_LENGTH = len(PREFIX) + _UUID_LENGTH + 1 + SECRET_LENGTH
HINT_CHARS = 4

MIN_EXPIRY_DAYS = 1
MAX_EXPIRY_DAYS = 90
MAX_NAME_LENGTH = MAX_DISPLAY_LENGTH

# Anywhere in text: used by `keyport scan` to find leaked keys.
KEY_PATTERN = re.compile(
    r"ak_live:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}:[0-9A-Za-z]{50}"
)
_LOWER_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
_BASE62_SET = frozenset(BASE62)


class KeyStatus(StrEnum):
    """What is stored: the last lifecycle change. What a key answers is its KeyState."""

    ACTIVE = "active"
    INACTIVE = "inactive"
    REVOKED = "revoked"


class KeyState(StrEnum):
    """What a key answers now, its status and its expiry taken together."""

    ACTIVE = "active"
    DEACTIVATED = "deactivated"
    EXPIRED = "expired"
    REVOKED = "revoked"

    @property
    def label(self) -> str:
        return self.value.capitalize()


def effective_state(status: KeyStatus, expired: bool) -> KeyState:
    """Revoked beats expired beats deactivated (docs/contract.md §1): the one home of that rule."""
    if status is KeyStatus.REVOKED:
        return KeyState.REVOKED
    if expired:
        return KeyState.EXPIRED
    return KeyState.ACTIVE if status is KeyStatus.ACTIVE else KeyState.DEACTIVATED


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, remainder = divmod(number, 62)
        digits.append(BASE62[remainder])
    return "".join(reversed(digits))


def checksum(body: str) -> str:
    """6-character base62 CRC32 of `ak_live:<key-id>:<random>`."""
    return _base62(binascii.crc32(body.encode("ascii")), CHECKSUM_LENGTH)


def generate_key(key_id: uuid.UUID) -> str:
    random_part = "".join(secrets.choice(BASE62) for _ in range(RANDOM_LENGTH))
    body = f"{PREFIX}{key_id}:{random_part}"
    return body + checksum(body)


def digest(key: str) -> str:
    """SHA-256 of the whole key, hex.

    Deliberately a fast hash and not a KDF (argon2, bcrypt, PBKDF2): the secret is 262 random
    bits, so there is nothing to brute-force and a slow hash would only slow every request.
    """
    return hashlib.sha256(key.encode("ascii")).hexdigest()


def hint(key: str) -> str:
    """What the dashboard may show: the public part and the first few secret characters."""
    return key[: len(PREFIX) + _UUID_LENGTH + 1 + HINT_CHARS] + "…"


def parse_key_id(token: str) -> str | None:
    """The key id of a well-formed key with a valid checksum, else None. No I/O."""
    if len(token) != KEY_LENGTH or not token.startswith(PREFIX):
        return None
    key_id = token[len(PREFIX) : len(PREFIX) + _UUID_LENGTH]
    if token[len(PREFIX) + _UUID_LENGTH] != ":" or not _LOWER_UUID.match(key_id):
        return None
    secret = token[-SECRET_LENGTH:]
    if not _BASE62_SET.issuperset(secret):
        return None
    if checksum(token[:-CHECKSUM_LENGTH]) != token[-CHECKSUM_LENGTH:]:
        return None
    return key_id


def validate_expiry_days(days: object) -> int:
    """A whole number of days from 1 to 90, or a ValidationFailed naming the field."""
    if isinstance(days, bool) or not isinstance(days, int):
        # ASCII digits only: `isdigit()` is also true for superscripts, which int() refuses.
        if isinstance(days, str) and days.strip().isascii() and days.strip().isdigit():
            days = int(days.strip())
        else:
            raise ValidationFailed.single("expiresInDays", "must be a whole number of days")
    if not MIN_EXPIRY_DAYS <= days <= MAX_EXPIRY_DAYS:
        raise ValidationFailed.single(
            "expiresInDays",
            f"must be between {MIN_EXPIRY_DAYS} and {MAX_EXPIRY_DAYS} days",
        )
    return days


def validate_key_name(name: str | None) -> str | None:
    if name is None:
        return None
    cleaned = name.strip()
    if not cleaned:
        return None
    problem = display_text_problem(cleaned, required=False)
    if problem is not None:
        raise ValidationFailed.single("name", problem)
    return cleaned


def validate_rate_limit(limit: object) -> int | None:
    """A key's own requests a minute: a whole number from 1 to MAX_RATE, or None (default)."""
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_RATE:
        raise ValidationFailed.single(
            "rateLimit", f"must be a whole number of requests a minute from 1 to {MAX_RATE}"
        )
    return limit


def validate_scopes(values: object) -> tuple[str, ...]:
    """A key's scopes: a non-empty list of `*` or `name:action`, duplicates dropped, order
    kept; None means the default, full access."""
    if values is None:
        return scopes.DEFAULT_SCOPES
    if isinstance(values, str) or not isinstance(values, list | tuple):
        raise ValidationFailed.single("scopes", "must be a list of scopes")
    if not values:
        raise ValidationFailed.single("scopes", "must name at least one scope")
    if len(values) > scopes.MAX_SCOPES:
        raise ValidationFailed.single("scopes", f"must name at most {scopes.MAX_SCOPES} scopes")
    for value in values:
        if not isinstance(value, str) or not scopes.is_scope(value):
            raise ValidationFailed.single(
                "scopes", f"{str(value)[:100]!r} is not a scope: use * or name:action"
            )
    return tuple(dict.fromkeys(values))


def validate_allowed_ips(values: object) -> tuple[str, ...]:
    """A key's IP allowlist as canonical network texts; None or empty means anywhere."""
    if values is None:
        return ()
    if isinstance(values, str) or not isinstance(values, list | tuple):
        raise ValidationFailed.single("allowedIps", "must be a list of IP networks")
    if len(values) > ip_allowlists.MAX_NETWORKS:
        raise ValidationFailed.single(
            "allowedIps", f"must list at most {ip_allowlists.MAX_NETWORKS} networks"
        )
    networks: dict[str, None] = {}
    for value in values:
        if not isinstance(value, str):
            raise ValidationFailed.single("allowedIps", "must be a list of IP networks")
        try:
            networks[str(ip_allowlists.parse_network(value))] = None
        except ValueError as error:
            raise ValidationFailed.single("allowedIps", str(error)) from None
    return tuple(networks)


def expiry_from(now: datetime, days: int) -> datetime:
    return now + timedelta(days=days)


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key record as the dashboard and CLI see it: never the secret."""

    id: str
    company_id: str
    name: str | None
    hint: str
    status: KeyStatus
    expires_at: datetime
    created_at: datetime
    created_by: str | None
    last_used_at: datetime | None
    last_used_ip: str | None
    rate_limit: int | None = None  # requests a minute of its own; None: the default
    scopes: tuple[str, ...] = DEFAULT_SCOPES  # domain.scopes; ("*",): full access
    allowed_ips: tuple[str, ...] = ()  # canonical networks; empty: anywhere
    rotated_to: str | None = None  # the key that replaced this one; None: never rotated

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at <= now

    def state(self, now: datetime) -> KeyState:
        return effective_state(self.status, self.is_expired(now))


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """The one moment the full key exists outside the caller's hands."""

    record: ApiKey
    key: str


def check_transition(current: KeyStatus, target: KeyStatus) -> None:
    """Revoked is final; everything else may move between active and inactive."""
    if current is KeyStatus.REVOKED:
        raise InvalidKeyTransition("API key is revoked and can never be used again")
    if target is KeyStatus.REVOKED:
        return
    if current is target:
        word = "active" if target is KeyStatus.ACTIVE else "deactivated"
        raise InvalidKeyTransition(f"API key is already {word}")
