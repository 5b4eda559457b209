"""The one rule for every name a person gives and others read: user names, key names.

Such text reaches HTML pages, CSV exports and terminals (`keyport key list`). Whatever is
invisible or moves the cursor is refused there: every Unicode "other" character (controls,
C1 controls such as U+0085 and U+009B, format characters such as zero-width spaces and bidi
overrides, surrogates, private use, unassigned) and line or paragraph separators, and every
code point that renders as nothing although it is a letter or a mark: Unicode's
Default_Ignorable_Code_Point set (Hangul fillers U+115F, U+1160, U+3164, U+FFA0, the
combining grapheme joiner U+034F, variation selectors, Mongolian vowel separators, Khmer
inherent vowels …) and the blank Braille pattern U+2800. Letters, marks, digits, punctuation,
symbols and ordinary spaces of every script are welcome.
"""

from __future__ import annotations

import re
import unicodedata

MAX_DISPLAY_LENGTH = 100
_REFUSED_CATEGORIES = ("C", "Zl", "Zp")
# Default_Ignorable_Code_Point (Unicode's DerivedCoreProperties.txt) whatever the category,
# plus U+2800, which renders blank and is not in it. Format characters among them are also
# refused by category; listing them here keeps the set whole.
_INVISIBLE = re.compile(
    "["
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f"
    "\u200b-\u200f\u202a-\u202e\u2060-\u206f\u2800\u3164"
    "\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff"
    "]"
)


def has_hidden_characters(text: str) -> bool:
    return any(unicodedata.category(c).startswith(_REFUSED_CATEGORIES) for c in text)


def has_invisible_characters(text: str) -> bool:
    """Letters and marks that show nothing: a name of them looks empty or like another."""
    return _INVISIBLE.search(text) is not None


def display_text_problem(text: str, *, required: bool) -> str | None:
    """What is wrong with `text` (already stripped) as a display name, else None."""
    if required and not text:
        return "must not be empty"
    if len(text) > MAX_DISPLAY_LENGTH:
        return f"must be at most {MAX_DISPLAY_LENGTH} characters"
    if has_hidden_characters(text):
        return "must not contain control characters"
    if has_invisible_characters(text):
        return "must not contain invisible characters"
    return None
