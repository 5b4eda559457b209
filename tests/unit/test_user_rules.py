"""Field rules of the v4 user API."""

from __future__ import annotations

import pytest

from keyport.domain.errors import ValidationFailed
from keyport.domain.users import NewUser, UserChanges, normalise_slug, parse_uuid


def test_slug_is_normalised() -> None:
    assert normalise_slug("John Doe") == "john-doe"
    assert normalise_slug("  Jürgen  Müller!! ") == "jurgen-muller"


def test_new_user_is_normalised() -> None:
    user = NewUser(" Ada@Example.COM ", " Ada ", "Lovelace", "Europe/Berlin", "Ada Lovelace")
    valid = user.validated()
    assert (valid.email, valid.given_name, valid.slug) == ("ada@example.com", "Ada", "ada-lovelace")


def test_every_bad_field_is_reported_at_once() -> None:
    with pytest.raises(ValidationFailed) as raised:
        NewUser("not-an-email", "", "x" * 101, "Mars/Olympus", "abc").validated()
    fields = [e.field for e in raised.value.errors]
    assert fields == ["email", "givenName", "familyName", "timezone", "slug"]


def test_slug_must_have_five_characters_after_normalising() -> None:
    with pytest.raises(ValidationFailed):
        UserChanges(slug="a b!").validated()
    assert UserChanges(slug="Hello World").validated().slug == "hello-world"


@pytest.mark.parametrize(
    "value", ["", "nope", "123", "g" * 36, "550e8400-e29b-41d4-a716-44665544000"]
)
def test_parse_uuid_refuses_non_uuids(value: str) -> None:
    assert parse_uuid(value) is None


def test_parse_uuid_gives_the_canonical_form() -> None:
    raw = "550E8400-E29B-41D4-A716-446655440000"
    assert parse_uuid(raw) == raw.lower()
