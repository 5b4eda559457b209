"""The one rule for every name a person gives and others read: user names, key names.

Such text reaches HTML pages, CSV exports and terminals (`keyport key list`). Whatever is
invisible or moves the cursor is refused there: every Unicode "other" character (controls,
C1 controls such as U+0085 and U+009B, format characters such as zero-width spaces and bidi
overrides, surrogates, private use, unassigned) and line or paragraph separators. Letters,
marks, digits, punctuation, symbols and ordinary spaces of every script are welcome.
"""

from __future__ import annotations

import unicodedata

MAX_DISPLAY_LENGTH = 100
_REFUSED_CATEGORIES = ("C", "Zl", "Zp")


def has_hidden_characters(text: str) -> bool:
    return any(unicodedata.category(c).startswith(_REFUSED_CATEGORIES) for c in text)


def display_text_problem(text: str, *, required: bool) -> str | None:
    """What is wrong with `text` (already stripped) as a display name, else None."""
    if required and not text:
        return "must not be empty"
    if len(text) > MAX_DISPLAY_LENGTH:
        return f"must be at most {MAX_DISPLAY_LENGTH} characters"
    if has_hidden_characters(text):
        return "must not contain control characters"
    return None
