"""Request and response bodies of the v4 user API, and how their decoding errors read."""

from __future__ import annotations

import re
from datetime import datetime
from typing import TypeVar

import msgspec

from keyport.domain.errors import FieldError, ValidationFailed
from keyport.domain.users import User


def iso_utc(moment: datetime) -> str:
    """`2024-01-15T10:30:00.000Z`, as the v4 API writes timestamps."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class UserOut(msgspec.Struct, rename="camel"):
    id: str
    email: str
    given_name: str
    family_name: str
    full_name: str
    slug: str | None
    timezone: str
    language: str
    is_admin: bool
    user_type: str
    company_id: str
    created_at: str
    updated_at: str

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            id=user.id,
            email=user.email,
            given_name=user.given_name,
            family_name=user.family_name,
            full_name=user.full_name,
            slug=user.slug,
            timezone=user.timezone,
            language=user.language,
            is_admin=user.is_admin,
            user_type=user.user_type.value,
            company_id=user.company_id,
            created_at=iso_utc(user.created_at),
            updated_at=iso_utc(user.updated_at),
        )


class UserListOut(msgspec.Struct):
    users: list[UserOut]
    total: int
    count: int
    offset: int


class CreatedUserOut(msgspec.Struct, rename="camel"):
    user_id: str
    company_id: str


class CreateUserIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    email: str
    given_name: str
    family_name: str
    timezone: str
    slug: str | None = None


class UpdateUserIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    given_name: str | None = None
    family_name: str | None = None
    slug: str | None = None
    email: str | None = None  # accepted only to say clearly that it cannot change


T = TypeVar("T")
_AT_PATH = re.compile(r" - at `\$\.?([^`]*)`$")
_NAMED_FIELD = re.compile(r"(?:missing required|unknown) field `([^`]+)`")


def decode_body(raw: bytes, body_type: type[T]) -> T:
    """Decode a JSON body or raise ValidationFailed naming the field at fault."""
    if not raw.strip():
        raise ValidationFailed.single("body", "a JSON object is required")
    try:
        return msgspec.json.decode(raw, type=body_type)
    except msgspec.ValidationError as error:
        raise ValidationFailed([_field_error(str(error))]) from None
    except (msgspec.DecodeError, UnicodeDecodeError):  # invalid UTF-8 is not JSON either
        raise ValidationFailed.single("body", "must be valid JSON") from None


def _field_error(text: str) -> FieldError:
    path = _AT_PATH.search(text)
    message = _AT_PATH.sub("", text)
    named = _NAMED_FIELD.search(message)
    if named:
        field = named.group(1)
        message = "is required" if "missing" in message else "is not a known field"
    elif path and path.group(1):
        field = path.group(1)
    else:
        field = "body"
    return FieldError(field, message.replace("`", "'"))
