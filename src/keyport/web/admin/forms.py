"""The create-key form: what was typed, what it means, and the messages beside its fields."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from litestar.datastructures import FormMultiDict

from keyport.domain.errors import ValidationFailed
from keyport.web.admin.access import field_text

PRESET_DAYS = ("7", "30", "60", "90")
CUSTOM = "custom"
DEFAULT_EXPIRY = "30"
# Service field names → the form's fields and the words a person reads.
_FIELDS = {
    "expiresInDays": ("expiry", "Expiration"),
    "name": ("name", "Name"),
    "scopes": ("scopes", "Scopes"),
    "allowedIps": ("allowed_ips", "Allowed IP networks"),
    "rateLimit": ("rate_limit", "Rate limit"),
    "url": ("url", "The URL"),
    "events": ("events", "Events:"),
}
MAX_LIST_TEXT = 10_000


def listed(text: str) -> list[str]:
    """Scopes or networks as typed: separated by spaces, commas or new lines."""
    return text.replace(",", " ").split()


def scopes_of(text: str) -> list[str] | None:
    """None (full access) when nothing was typed."""
    return listed(text) or None


def rate_limit_of(text: str) -> object:
    """None (the server's default) when nothing was typed; a number when one was; anything
    else as typed, for the service to refuse in words."""
    cleaned = text.strip()
    if not cleaned:
        return None
    return int(cleaned) if cleaned.isascii() and cleaned.isdigit() else cleaned


Fields = dict[str, tuple[str, str]]  # the service's field → (the form's field, its label)
PEOPLE_FIELDS: Fields = {
    "email": ("email", "Email"),
    "role": ("role", "Role"),
    "givenName": ("given_name", "First name"),
    "familyName": ("family_name", "Last name"),
    "password": ("password", "Password"),
    "confirm_password": ("confirm_password", "The two passwords"),
}


def field_messages(error: ValidationFailed, fields: Fields | None = None) -> dict[str, str]:
    """The service's field names → the form's, each with a sentence a person reads."""
    known = _FIELDS if fields is None else fields
    messages: dict[str, str] = {}
    for item in error.errors:
        form_field, label = known.get(item.field, (item.field, item.field.capitalize()))
        messages.setdefault(form_field, f"{label} {item.message}.")
    return messages


@dataclass(frozen=True, slots=True)
class CreateKeyForm:
    name: str = ""
    expiry: str = DEFAULT_EXPIRY  # a preset or "custom"
    custom_days: str = ""
    scopes: str = ""  # empty: full access
    allowed_ips: str = ""  # empty: anywhere
    rate_limit: str = ""  # empty: the server's default
    nonce: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def posted(cls, form: FormMultiDict) -> CreateKeyForm:
        return cls(
            name=field_text(form, "name")[:1000],
            expiry=field_text(form, "expiry")[:20],
            custom_days=field_text(form, "custom_days")[:20],
            scopes=field_text(form, "scopes")[:MAX_LIST_TEXT],
            allowed_ips=field_text(form, "allowed_ips")[:MAX_LIST_TEXT],
            rate_limit=field_text(form, "rate_limit")[:20],
            nonce=field_text(form, "nonce"),
        )

    @property
    def days(self) -> str:
        """The number of days asked for; the service decides whether it is allowed."""
        return self.custom_days.strip() if self.expiry == CUSTOM else self.expiry

    def with_errors(self, error: ValidationFailed) -> CreateKeyForm:
        """The same answers with a fresh nonce and each message next to its field."""
        return CreateKeyForm(
            self.name,
            self.expiry,
            self.custom_days,
            self.scopes,
            self.allowed_ips,
            self.rate_limit,
            errors=field_messages(error),
        )
