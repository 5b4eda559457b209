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
