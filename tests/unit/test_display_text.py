"""Issue 9, item 6: one text rule for every display name, key names and user names alike."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyport.domain.display_text import has_hidden_characters
from keyport.domain.errors import ValidationFailed
from keyport.domain.keys import validate_key_name
from keyport.domain.users import NewUser, UserChanges

HIDDEN = [
    "\x00",
    "\x1b",
    "\x7f",
    "\u0085",  # C1: next line
    "\u009b",  # C1: control sequence introducer (terminal escapes without ESC)
    "\u200b",  # zero-width space
    "\u200d",  # zero-width joiner
    "\u202e",  # right-to-left override
    "\u2066",  # left-to-right isolate
    "\ufeff",  # zero-width no-break space
    "\u2028",  # line separator
    "\u2029",  # paragraph separator
    "\ue000",  # private use
    "\U000e0001",  # language tag
]
VISIBLE = ["Zoë", "日本語のキー", "Prod \u2013 EU", "🔑 deploy", "O'Brien", "Ἀθηνᾶ", "a\u00a0b"]


def key_name_problem(text: str) -> str | None:
    try:
        validate_key_name(text)
    except ValidationFailed as error:
        return error.errors[0].message
    return None


def user_name_problem(text: str) -> str | None:
    try:
        UserChanges(given_name=text).validated()
    except ValidationFailed as error:
        return error.errors[0].message
    return None


@pytest.mark.parametrize("char", HIDDEN)
def test_hidden_characters_are_refused_in_key_and_user_names(char: str) -> None:
    text = f"Deploy{char}key"
    assert key_name_problem(text) == "must not contain control characters"
    assert user_name_problem(text) == "must not contain control characters"
    with pytest.raises(ValidationFailed):
        NewUser("a@b.test", text, "Family", "UTC").validated()


@pytest.mark.parametrize("text", VISIBLE)
def test_names_in_any_script_are_welcome(text: str) -> None:
    assert key_name_problem(text) is None
    assert user_name_problem(text) is None


@given(st.text(max_size=120))
def test_key_names_and_user_names_follow_one_rule(text: str) -> None:
    """Whatever the text, both accept it or both refuse it for the same reason (an empty key
    name is allowed: a key need not have one)."""
    if not text.strip():
        return
    assert key_name_problem(text) == user_name_problem(text)
    if has_hidden_characters(text.strip()):
        assert key_name_problem(text) is not None


# Issue 30, item 10: letters and marks that render as nothing. Unicode 15.1's
# Default_Ignorable_Code_Point ranges (DerivedCoreProperties.txt), and the blank Braille pattern.
DEFAULT_IGNORABLE = [
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
]
INVISIBLE = [
    "\u3164",  # Hangul filler
    "\u115f",  # Hangul choseong filler
    "\u1160",  # Hangul jungseong filler
    "\uffa0",  # halfwidth Hangul filler
    "\u034f",  # combining grapheme joiner
    "\u2800",  # Braille pattern blank
    "\ufe0f",  # variation selector 16
    "\U000e0100",  # variation selector 17
    "\u17b4",  # Khmer vowel inherent AQ
]


@pytest.mark.parametrize("char", INVISIBLE)
def test_invisible_fillers_are_refused_in_key_and_user_names(char: str) -> None:
    for text in (f"Deploy{char}key", char, f"{char}{char}"):
        assert key_name_problem(text) == "must not contain invisible characters"
        assert user_name_problem(text) == "must not contain invisible characters"


def test_every_default_ignorable_code_point_is_refused() -> None:
    for first, last in DEFAULT_IGNORABLE:
        for point in range(first, last + 1):
            assert key_name_problem(f"a{chr(point)}b") is not None, hex(point)
