"""Users of a company: roles, user types and the field rules of the v4 user API."""

from __future__ import annotations

import re
import unicodedata
import zoneinfo
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import lru_cache

from keyport.domain.display_text import MAX_DISPLAY_LENGTH, display_text_problem
from keyport.domain.errors import FieldError, ValidationFailed


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"

    @property
    def is_admin(self) -> bool:
        return self is not Role.MEMBER


class UserType(StrEnum):
    STANDARD = "standard"
    RESOURCE = "resource"
    API_PLATFORM = "api-platform"
    PARTNER = "partner"


LANGUAGES = frozenset({"en", "de", "fr", "es", "no", "nl", "it", "pl", "sv", "tr", "da"})
MIN_SLUG_LENGTH = 5
MAX_NAME_LENGTH = MAX_DISPLAY_LENGTH
MAX_EMAIL_LENGTH = 254
_EMAIL = re.compile(r"[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+\Z")


@dataclass(frozen=True, slots=True)
class User:
    id: str
    company_id: str
    email: str
    given_name: str
    family_name: str
    slug: str | None
    timezone: str
    language: str
    role: Role
    user_type: UserType
    created_at: datetime
    updated_at: datetime
    # Dashboard state (migration 0007): invited and not yet accepted (cannot sign in),
    # two-factor sign-in on, the last successful sign-in.
    invited: bool = False
    two_factor: bool = False
    last_sign_in_at: datetime | None = None

    @property
    def full_name(self) -> str:
        return f"{self.given_name} {self.family_name}".strip()

    @property
    def is_admin(self) -> bool:
        return self.role.is_admin


_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")


def parse_uuid(value: str) -> str | None:
    """The canonical lowercase form of a UUID in its hyphenated 8-4-4-4-12 form, or None.

    Stricter than `uuid.UUID`, which also takes braces, `urn:uuid:` and hyphens anywhere.
    """
    if len(value) != 36 or not _UUID.match(value):
        return None
    return value.lower()


@lru_cache(maxsize=1)
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def is_iana_timezone(name: str) -> bool:
    return name in _timezones()


def normalise_slug(raw: str) -> str:
    """'John Doe' → 'john-doe': ASCII, lowercase, words joined by single hyphens."""
    ascii_text = unicodedata.normalize("NFKD", raw).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def normalise_email(raw: str) -> str:
    return raw.strip().lower()


def _check_text(errors: list[FieldError], field: str, value: str, *, required: bool) -> str:
    cleaned = value.strip()
    problem = display_text_problem(cleaned, required=required)
    if problem is not None:
        errors.append(FieldError(field, problem))
    return cleaned


def _check_slug(errors: list[FieldError], raw: str) -> str:
    slug = normalise_slug(raw)
    if len(slug) < MIN_SLUG_LENGTH:
        errors.append(FieldError("slug", f"must be at least {MIN_SLUG_LENGTH} characters"))
    elif len(slug) > MAX_NAME_LENGTH:
        errors.append(FieldError("slug", f"must be at most {MAX_NAME_LENGTH} characters"))
    return slug


@dataclass(frozen=True, slots=True)
class NewUser:
    email: str
    given_name: str
    family_name: str
    timezone: str
    slug: str | None = None
    language: str = "en"
    role: Role = Role.MEMBER
    user_type: UserType = UserType.STANDARD

    def validated(self) -> NewUser:
        """A normalised copy, or ValidationFailed listing every bad field."""
        errors: list[FieldError] = []
        email = normalise_email(self.email)
        if len(email) > MAX_EMAIL_LENGTH or not _EMAIL.match(email) or not email.isascii():
            errors.append(FieldError("email", "must be a valid email address"))
        given = _check_text(errors, "givenName", self.given_name, required=True)
        family = _check_text(errors, "familyName", self.family_name, required=True)
        if not is_iana_timezone(self.timezone):
            errors.append(FieldError("timezone", "must be an IANA time zone such as Europe/Berlin"))
        slug = _check_slug(errors, self.slug) if self.slug is not None else None
        if self.language not in LANGUAGES:
            errors.append(FieldError("language", "must be one of " + ", ".join(sorted(LANGUAGES))))
        if errors:
            raise ValidationFailed(errors)
        return NewUser(
            email, given, family, self.timezone, slug, self.language, self.role, self.user_type
        )


@dataclass(frozen=True, slots=True)
class UserChanges:
    given_name: str | None = None
    family_name: str | None = None
    slug: str | None = None

    def validated(self) -> UserChanges:
        errors: list[FieldError] = []
        given = family = slug = None
        if self.given_name is not None:
            given = _check_text(errors, "givenName", self.given_name, required=True)
        if self.family_name is not None:
            family = _check_text(errors, "familyName", self.family_name, required=True)
        if self.slug is not None:
            slug = _check_slug(errors, self.slug)
        if errors:
            raise ValidationFailed(errors)
        return UserChanges(given, family, slug)

    @property
    def is_empty(self) -> bool:
        return self.given_name is None and self.family_name is None and self.slug is None
