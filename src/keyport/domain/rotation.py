"""Rotating a key: a new key takes over, the old one keeps working for a grace period."""

from __future__ import annotations

from datetime import datetime, timedelta

from keyport.domain.errors import InvalidKeyTransition, ValidationFailed
from keyport.domain.keys import MAX_EXPIRY_DAYS, MIN_EXPIRY_DAYS, ApiKey, KeyStatus

MAX_GRACE_SECONDS = 7 * 24 * 3600
ALREADY_ROTATED = "API key has already been rotated"


def validate_grace(seconds: object) -> timedelta:
    if seconds is None:
        return timedelta(0)
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int)
        or not 0 <= seconds <= MAX_GRACE_SECONDS
    ):
        raise ValidationFailed.single(
            "gracePeriodSeconds", f"must be a whole number of seconds from 0 to {MAX_GRACE_SECONDS}"
        )
    return timedelta(seconds=seconds)


def default_days(old: ApiKey) -> int:
    """The old key's whole lifetime in days, within the limits a new key may have."""
    lifetime_days = round((old.expires_at - old.created_at) / timedelta(days=1))
    return max(MIN_EXPIRY_DAYS, min(MAX_EXPIRY_DAYS, lifetime_days))


def check_rotatable(old: ApiKey, now: datetime) -> None:
    """Revoked and expired keys cannot be rotated (409); a deactivated one can. Nor can a key
    that already has a successor: rotating it again (in its grace period, perhaps by whoever
    stole it) would hand out a fresh key forever."""
    if old.status is KeyStatus.REVOKED:
        raise InvalidKeyTransition("API key is revoked and can never be used again")
    if old.is_expired(now):
        raise InvalidKeyTransition("API key has expired")
    if old.rotated_to is not None:
        raise InvalidKeyTransition(ALREADY_ROTATED)


def check_own_lifetime(old: ApiKey, days: int | None) -> None:
    """A key renewing itself does so on the terms it was made with: at most its own lifetime
    in whole days (rounded as the default is), so it cannot lengthen its own life."""
    if days is not None and days > default_days(old):
        raise ValidationFailed.single(
            "expiresInDays",
            f"must be at most this key's own lifetime, {default_days(old)} days",
        )


def grace_end(old: ApiKey, now: datetime, grace: timedelta) -> datetime:
    """When the old key stops working: after the grace, but never later than it would have."""
    return min(now + grace, old.expires_at)


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    """`30s`, `15m`, `1h`, `7d` or plain seconds → seconds; ValidationFailed otherwise."""
    cleaned = text.strip().lower()
    unit = _UNITS.get(cleaned[-1:]) if cleaned else None
    number = cleaned[:-1] if unit else cleaned
    if not number.isdigit():
        raise ValidationFailed.single(
            "gracePeriodSeconds", f"{text!r} is not a duration: use 30s, 15m, 1h, 7d or seconds"
        )
    return int(number) * (unit or 1)
