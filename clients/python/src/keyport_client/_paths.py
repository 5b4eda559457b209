"""Which paths are asked about, and with which scopes: the app's own path rules.

A path is matched as the framework routes it (decoded, after any mount prefix). Before any rule
looks at it, it must be clean, as Keyport's own gate requires of its paths: it starts with `/`
and holds no empty segment (`//`), no `.` or `..` segment, no backslash and no control
character. A path that is not clean is refused with 400, because a framework, a file server or
a proxy in front may read it as another path than the one the rules were matched on.

`scopes` maps path prefixes to scopes as `keyport proxy-config --scope` does: a prefix matches
whole segments (`/orders` matches `/orders` and `/orders/7`, never `/ordersx`), without regard to
case (a spelling the router accepts in another case still needs the scope), and the longest
matching prefix decides; `/` is the default for every other path. `exclude` lists prefixes that
pass without a question, whole segments too, and in their exact case only: an excluded prefix
never lets another spelling through unasked.

Only which scopes a path needs is decided here. Whether a credential holds them is Keyport's
rule alone, answered by `/v1/authorize`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def is_clean(path: str) -> bool:
    """Whether a decoded path may be matched and handed on (see the module's docstring)."""
    if not path.startswith("/") or "//" in path or "\\" in path:
        return False
    if not path.isprintable() and _CONTROL.search(path):
        return False
    return "/." not in path or not any(part in {".", ".."} for part in path.split("/"))


def _under(path: str, prefix: str) -> bool:
    return prefix == "/" or (
        path.startswith(prefix) and (len(path) == len(prefix) or path[len(prefix)] == "/")
    )


def _prefix(text: str, what: str) -> str:
    if not isinstance(text, str) or not is_clean(text):
        raise ValueError(f"{what}: {text!r} is not a path prefix like /orders")
    return text.rstrip("/") or "/"


def _scopes_of(value: str | Sequence[str], prefix: str) -> tuple[str, ...]:
    found = (value,) if isinstance(value, str) else tuple(value)
    for scope in found:
        # Which spellings are scopes is Keyport's to say (a malformed one: its 400 on every
        # request); only what cannot be a query value is refused here, at start.
        if not isinstance(scope, str) or not scope or not scope.isprintable() or " " in scope:
            raise ValueError(f"scopes[{prefix!r}]: {scope!r} is not a scope like orders:read")
    return found


class PathRules:
    """The scopes each path needs, and the paths that pass unasked."""

    def __init__(
        self,
        scopes: Mapping[str, str | Sequence[str]] | None = None,
        exclude: Iterable[str] = (),
    ) -> None:
        if isinstance(exclude, str):
            raise TypeError("exclude: give a list of path prefixes, not one string")
        rules: dict[str, tuple[str, ...]] = {}
        for text, value in (scopes or {}).items():
            prefix = _prefix(text, "scopes").lower()
            if prefix in rules:
                raise ValueError(f"scopes: {prefix!r} is given more than once")
            rules[prefix] = _scopes_of(value, text)
        # Longest first: the first prefix that matches is the longest one.
        self._scopes = sorted(rules.items(), key=lambda rule: -len(rule[0]))
        self._exclude = tuple(_prefix(text, "exclude") for text in exclude)

    def excluded(self, path: str) -> bool:
        return any(_under(path, prefix) for prefix in self._exclude)

    def scopes_for(self, path: str) -> tuple[str, ...]:
        lowered = path.lower()
        for prefix, needed in self._scopes:
            if _under(lowered, prefix):
                return needed
        return ()
