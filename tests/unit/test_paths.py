"""web/paths.py: a path the gate accepts is already in the one form every normaliser agrees
on, and the guarded prefixes match whole segments in any case (issue 9, item 1)."""

from __future__ import annotations

import posixpath
from urllib.parse import quote, unquote

from hypothesis import given
from hypothesis import strategies as st

from keyport.web.paths import GUARDED_PREFIXES, guarded_prefix, is_canonical

SEGMENT = st.one_of(
    st.sampled_from(["", ".", "..", "v4", "V4", "v1", "user", "me", "%2F", "%2e", "a.b", "\\"]),
    st.text(max_size=6),
)
paths = st.lists(SEGMENT, max_size=6).map(lambda parts: "/" + "/".join(parts))


@given(paths)
def test_a_canonical_path_is_its_own_normal_form(raw: str) -> None:
    path = unquote(raw)
    if not is_canonical(path, raw.encode("utf-8", "surrogatepass")):
        return
    trimmed = path.rstrip("/") or "/"
    assert posixpath.normpath(trimmed) == trimmed
    assert "//" not in path and "\\" not in path
    assert all(c.isprintable() or c == " " for c in path if c.isascii())
    assert "%2f" not in raw.lower() and "%2e" not in raw.lower()


@given(paths)
def test_whatever_the_router_would_collapse_is_refused(raw: str) -> None:
    """Collapsing slashes and resolving dots is what routers and proxies do: if that changes
    the path, the gate must not have accepted it."""
    path = unquote(raw)
    collapsed = posixpath.normpath(path.replace("\\", "/")) if path.startswith("/") else path
    if collapsed not in {path, path.rstrip("/")} and path != "/":
        assert not is_canonical(path, raw.encode("utf-8", "surrogatepass"))


@given(st.sampled_from(GUARDED_PREFIXES), st.text(max_size=10), st.booleans())
def test_prefixes_match_whole_segments_in_any_case(prefix: str, rest: str, upper: bool) -> None:
    spelled = prefix.upper() if upper else prefix
    assert guarded_prefix(spelled) == prefix
    assert guarded_prefix(f"{spelled}/{rest}") == prefix
    if rest and not rest.startswith("/"):
        assert guarded_prefix(spelled + rest) is None


def test_examples() -> None:
    assert is_canonical("/v4/user/me")
    assert is_canonical("/v4/user/me/")
    assert is_canonical("/.well-known/security.txt")
    for bad in ["//v4/user/me", "/v4/./user", "/v4/../v4", "/v4/user/me%00", "/a\x85b"]:
        assert not is_canonical(unquote(bad), quote(bad, safe="/%").encode())
    assert not is_canonical("/v4/user/me", b"/v4%2Fuser/me")
    assert guarded_prefix("/v4x/user") is None
    assert guarded_prefix("/admin/api-keys") is None
