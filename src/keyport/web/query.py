"""Query parameters a route does not know are refused, never ignored: one rule for every route.

A typo (`?userTyp=admin`) must not silently widen an answer, and a value without a name
(`?=x`) is malformed input. Both are a 400 `Validation failed` naming the parameter (`query`
for a nameless one).
"""

from __future__ import annotations

from collections.abc import Iterable

from keyport.domain.errors import ValidationFailed


def unknown_parameter(name: str) -> ValidationFailed:
    """The refusal of one parameter the route does not know (`name` may be empty)."""
    if not name:
        return ValidationFailed.single("query", "a parameter needs a name")
    return ValidationFailed.single(name, "is not a known parameter")


def refuse_unknown(names: Iterable[str], known: frozenset[str]) -> None:
    """ValidationFailed for the first (in sorted order) of `names` that is not in `known`."""
    unknown = set(names) - known
    if unknown:
        raise unknown_parameter(min(unknown))
