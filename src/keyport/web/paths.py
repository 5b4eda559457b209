"""One canonical request path, so that routing and authentication cannot disagree.

The gate decides "this request needs an API key" from the path, the framework decides which
handler answers it from the path, and a proxy in front may decide something else again. If
any of them normalised a spelling the others did not (`//v4/user/me`, `/%2Fv4/user/me`,
`/v4/./user/me`), a request could reach a handler without the gate having looked at it. So a
path that is not already in its one canonical form is refused before anyone looks further:

- it starts with `/` and has no empty segment (`//`), no `.` or `..` segment;
- it holds no control character (NUL included) and no backslash;
- its raw form percent-encodes no `/`, `\\` or `.` (a proxy may decode them, or may not).

Every remaining path is matched against the guarded API prefixes without regard to case,
whole segments only (`/v4` guards `/v4` and `/v4/...`, not `/v4x`): a spelling the router
happens to accept in another case is authenticated like the canonical one, never skipped.
"""

from __future__ import annotations

import re

# Every prefix under which a request must carry an API key; add new APIs here.
GUARDED_PREFIXES: tuple[str, ...] = ("/v4", "/v1")
AUTHORIZE_PATH = "/v1/authorize"
_AUTHORIZE_SUFFIXED = AUTHORIZE_PATH + "/"

_FORBIDDEN_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f\\]")
_ENCODED_SEPARATORS = re.compile(rb"%(2f|5c|2e)", re.IGNORECASE)


def is_canonical(path: str, raw_path: bytes | None = None) -> bool:
    # On every request: the common, clean path is decided by a few substring tests in C.
    if not path.startswith("/") or "//" in path or "\\" in path:
        return False
    if not (path.isprintable() if path.isascii() else not _FORBIDDEN_CHARACTERS.search(path)):
        return False
    if raw_path is not None and b"%" in raw_path and _ENCODED_SEPARATORS.search(raw_path):
        return False
    if "/." in path:
        return not any(segment in {".", ".."} for segment in path.split("/"))
    return True


def guarded_prefix(path: str, prefixes: tuple[str, ...] = GUARDED_PREFIXES) -> str | None:
    """The API prefix whose whole segments start this path (any case), else None."""
    for prefix in prefixes:
        size = len(prefix)
        if path[:size].lower() == prefix and (len(path) == size or path[size] == "/"):
            return prefix
    return None


def is_authorize(path: str) -> bool:
    """`/v1/authorize`, or `/v1/authorize/<original path>` as Envoy's HTTP ext_authz asks it
    (it appends the request's own path and query to a prefix)."""
    return path == AUTHORIZE_PATH or path.startswith(_AUTHORIZE_SUFFIXED)
