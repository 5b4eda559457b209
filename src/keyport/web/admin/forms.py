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
}
MAX_LIST_TEXT = 10_000


def listed(text: str) -> list[str]:
    """Scopes or networks as typed: separated by spaces, commas or new lines."""
    return text.replace(",", " ").split()


def scopes_of(text: str) -> list[str] | None:
    """None (full access) when nothing was typed."""
    return listed(text) or None


@dataclass(frozen=True, slots=True)
class CreateKeyForm:
    name: str = ""
    expiry: str = DEFAULT_EXPIRY  # a preset or "custom"
    custom_days: str = ""
    scopes: str = ""  # empty: full access
    allowed_ips: str = ""  # empty: anywhere
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
            nonce=field_text(form, "nonce"),
        )

    @property
    def days(self) -> str:
        """The number of days asked for; the service decides whether it is allowed."""
        return self.custom_days.strip() if self.expiry == CUSTOM else self.expiry

    def with_errors(self, error: ValidationFailed) -> CreateKeyForm:
        """The same answers with a fresh nonce and each message next to its field."""
        errors = {}
        for item in error.errors:
            form_field, label = _FIELDS.get(item.field, (item.field, item.field))
            errors[form_field] = f"{label} {item.message}."
        return CreateKeyForm(
            self.name,
            self.expiry,
            self.custom_days,
            self.scopes,
            self.allowed_ips,
            errors=errors,
        )
