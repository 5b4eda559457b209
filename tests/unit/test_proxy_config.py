"""`keyport proxy-config`: what it accepts, and the parts of the printed files the gateway
tests rely on (the files themselves run under real nginx and Caddy in tests/e2e). Hostile
values are refused, or the printed file still reads as the intended directives only."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyport.proxy_config.caddy import render_caddy
from keyport.proxy_config.nginx import render_nginx
from keyport.proxy_config.spec import (
    ENCODED_SLASH,
    REFUSED_PATH,
    ProxySpec,
    SpecError,
    build_spec,
    parse_rule,
)


def spec(*rules: str) -> ProxySpec:
    return build_spec("127.0.0.1:8080", "http://127.0.0.1:8000", "http://10.0.0.5:9000", rules)


def test_rules_are_ordered_longest_prefix_first_and_trailing_slashes_dropped() -> None:
    built = build_spec("[::1]:8080", "http://k:8000", "https://svc", ("/a=a:r", "/a/b/=a:w"))
    assert [(r.prefix, r.scope) for r in built.rules] == [("/a/b", "a:w"), ("/a", "a:r")]
    assert built.listen.host_port == "[::1]:8080"
    assert built.upstream.url == "https://svc:443"


@pytest.mark.parametrize(
    "rule",
    [
        *("orders=orders:read", "/orders", "/orders=*", "/orders=Orders", "/a b=x:y"),
        *("/a;x=x:y", "/a{=x:y", '/a"=x:y', "/a$x=x:y", "//a=x:y", "/a%2f=x:y"),
        *("/a/../b=x:y", "/./a=x:y", "/a#b=x:y", "/a\\b=x:y", "/é=x:y", "/a=x:ÿ"),
    ],
)
def test_rules_that_could_break_a_config_file_are_refused(rule: str) -> None:
    with pytest.raises(SpecError):
        parse_rule(rule)


@pytest.mark.parametrize(
    ("listen", "keyport"),
    [
        ("8080", "http://k"),
        ("h:0", "http://k"),
        ("h;x:80", "http://k"),
        ("h:80", "ftp://k"),
        ("h:80", "http://k/path"),
        ("h:80", "http://u@k"),
        ("[fe80::1%eth0;}]:80", "http://k"),
        ("h:80", "http://[fe80::1%25x{]"),
        ("::1:80", "http://k"),
        ("h:+80", "http://k"),
        ("h:٨٠", "http://k"),
        ("h:80", "http://k:80?x"),
        ("h:80", "http://k#x"),
        ("h:80", "http://k\n}"),
        ("h:80", "http://-k"),
        ("1.2.3:80", "http://k"),
    ],
)
def test_bad_addresses_are_refused(listen: str, keyport: str) -> None:
    with pytest.raises(SpecError):
        build_spec(listen, keyport, "http://u", ())


def test_a_prefix_given_twice_is_refused() -> None:
    with pytest.raises(SpecError, match="more than once"):
        build_spec("h:80", "http://k", "http://u", ("/a=a:b", "/a/=c:d"))


def test_nginx_asks_once_per_scope_and_matches_whole_segments() -> None:
    text = render_nginx(spec("/orders=orders:read"))
    assert "proxy_pass http://keyport/v1/authorize?scope=orders:read;" in text
    assert "location ~* ^/orders(/|$) {" in text
    assert "error_page 401 403 500 = @keyport_refusal;" in text
    assert "return 429 $keyport_refusal_body;" in text
    assert text.count("proxy_set_header X-Keyport-Key-Id $keyport_key_id;") == 2
    assert text.count('proxy_set_header Authorization "";') == 2
    assert "daemon off;" in text and "pid nginx.pid;" in text


def test_caddy_strips_client_headers_first_and_drops_the_refusal_headers() -> None:
    text = render_caddy(spec("/orders=orders:read"))
    assert text.index("request_header -X-Keyport-*") < text.index("forward_auth")
    assert "uri /v1/authorize?scope=orders:read" in text
    # Unscoped paths ask with an empty query: a bare path would keep the client's own query.
    assert "uri /v1/authorize?\n" in text
    assert "header_down -X-Keyport-Refusal-Body" in text
    assert "admin off" in text
    assert "@scope1 path /orders /orders/*" in text


# --- the path rule both configurations apply to the target they forward ----------------------

REFUSED = re.compile(REFUSED_PATH, re.IGNORECASE)


@pytest.mark.parametrize(
    "target",
    [
        *("/a\\b", "/a%5Cb", "/a%2e%2E/b", "/a/./b", "/a/../b", "/a/..", "/a/.", "//a", "/a//b"),
        *("/a#b", "/a%00", "/a%1f", "/a%7F", "/a%2F..%2Fb", "/a%2f%2fb", "/a/..?x", "/a;b/c"),
    ],
)
def test_spellings_of_another_path_are_refused(target: str) -> None:
    assert REFUSED.search(target)


@pytest.mark.parametrize(
    "target",
    ["/", "/a/b", "/a/..b", "/a/b.", "/a/.b", "/a%20b", "/a%3Bb", "/a?x=//..\\%2e;", "/a%252F"],
)
def test_plain_paths_and_any_query_pass(target: str) -> None:
    assert not REFUSED.search(target)
    assert not re.search(ENCODED_SLASH, target, re.IGNORECASE)


def test_encoded_slashes_are_allowed_only_under_the_given_prefixes() -> None:
    built = build_spec("h:80", "http://k", "http://u", (), ("/files/", "/ids"))
    assert built.encoded_slash_allowed() == "^(?:/files/|/ids/)"
    nginx = render_nginx(built)
    assert '"~*^(?:/files/|/ids/)" 0;' in nginx
    assert nginx.index("/ids/)") < nginx.index(f'"~*{ENCODED_SLASH}" 1;')
    assert "not vars_regexp {http.request.uri} `(?i)^(?:/files/|/ids/)`" in render_caddy(built)
    assert "--allow-encoded-slash /files --allow-encoded-slash /ids" in nginx


def test_the_callers_key_stays_at_the_proxy_unless_asked() -> None:
    kept = spec()
    forwarded = build_spec("h:80", "http://k", "http://u", (), forward_authorization=True)
    assert "header_up -Authorization" in render_caddy(kept)
    assert "header_up -Authorization" not in render_caddy(forwarded)
    assert "proxy_set_header Authorization" not in render_nginx(forwarded)
    assert render_nginx(forwarded).startswith("# Generated by: keyport proxy-config nginx")
    assert "--forward-authorization" in render_nginx(forwarded).splitlines()[0]


# --- hostile values: refused, or the printed file reads as the intended directives only ------


def nginx_statements(text: str) -> list[tuple[int, str, int]]:
    """(depth, directive, number of words) for each statement, read as nginx reads its files:
    words, quoted strings with backslash escapes, `;`, `{`, `}` and `#` comments."""
    statements: list[tuple[int, str, int]] = []
    words: list[str] = []
    depth = index = 0
    while index < len(text):
        char = text[index]
        if char.isspace():
            index += 1
        elif char == "#":
            index = text.find("\n", index) % (len(text) + 1) or len(text)
        elif char in ";{}":
            if words:  # a map's rows start with a quoted value, not a directive
                name = '"' if words[0].startswith('"') else words[0]
                statements.append((depth, name, len(words)))
            words = []
            depth += {"{": 1, "}": -1, ";": 0}[char]
            index += 1
        elif char in "\"'":
            end = index + 1
            while text[end] != char:
                end += 2 if text[end] == "\\" else 1
            words.append(text[index : end + 1])
            index = end + 1
        else:
            word = re.match(r"[^\s;{}]+", text[index:])
            assert word is not None
            words.append(word.group())
            index += len(word.group())
    assert depth == 0 and not words
    return statements


def caddy_statements(text: str) -> list[tuple[int, str, int]]:
    """(depth, first token, number of tokens) for each line, read as the Caddyfile lexer reads:
    whitespace-separated tokens, "quoted" (backslash escapes) and `backquoted` ones, comments
    from a `#` that starts a token, a `{` or `}` token opening or closing a block."""
    statements: list[tuple[int, str, int]] = []
    depth = 0
    token = re.compile(r'"(?:\\.|[^"\\])*"|`[^`]*`|[^\s]+')
    for line in text.splitlines():
        tokens = []
        for found in token.finditer(line):
            if found.group().startswith("#"):
                break
            tokens.append(found.group())
        if not tokens:
            continue
        if tokens == ["}"]:
            depth -= 1
            continue
        site = tokens[0].startswith("http://")  # a site address names the port
        statements.append((depth, "http://" if site else tokens[0], len(tokens)))
        depth += tokens[-1] == "{"
    assert depth == 0
    return statements


_HOSTILE = st.text(alphabet="ab1:.-[]%;{}\"'` \n\t#$/\\@=_*?", max_size=8)
# Plain values for every part; the test makes one part hostile at a time.
PLAIN = {
    "listen": "127.0.0.1:8080",
    "keyport": "http://127.0.0.1:8000",
    "upstream": "http://svc.example",
    "scope": "/orders=orders:read",
    "allow": "/files",
}
# Where hostile text goes into each part: alone, or around and inside a plain value.
_AROUND = {
    "listen": ["{}", "{}:80", "h{}:80", "[fe80::1%{}]:80", "[::1]:8{}", "127.0.0.1:80{}"],
    "keyport": ["{}", "http://{}", "http://k{}", "http://[fe80::1%25{}]:80", "http://k:80{}"],
    "upstream": ["http://{}", "http://[::{}]", "http://u.example{}", "http://u:{}"],
    "scope": ["{}", "/a{}=a:b", "/a/{}/b=a:b", "/a={}", "/a=a:b{}", "{}=a:b"],
    "allow": ["{}", "/a{}", "/{}/b", "/a/{}"],
}
_PARTS = st.sampled_from(sorted(PLAIN)).flatmap(
    lambda part: st.tuples(
        st.just(part),
        st.builds(
            str.format,
            st.sampled_from(_AROUND[part]),
            st.one_of(st.text(alphabet="ab1.-:", max_size=4), _HOSTILE),
        ),
    )
)


def build(part: str, value: str, forward: bool) -> ProxySpec:
    values = {**PLAIN, part: value}
    return build_spec(
        values["listen"],
        values["keyport"],
        values["upstream"],
        (values["scope"], "/orders/admin=orders:admin"),
        (values["allow"],),
        forward,
    )


@settings(max_examples=400, deadline=None)
@given(hostile=_PARTS, forward=st.booleans())
def test_hostile_values_never_add_directives(hostile: tuple[str, str], forward: bool) -> None:
    """Each part refused, or the printed file has the statements of a plain one, exactly."""
    try:
        built = build(*hostile, forward)
    except SpecError:
        return
    # A rule for `/` is the default rule, not a location of its own: compare like with like.
    root = any(rule.prefix == "/" for rule in built.rules)
    plain = build("scope", "/=orders:read" if root else PLAIN["scope"], forward)
    assert nginx_statements(render_nginx(built)) == nginx_statements(render_nginx(plain))
    assert caddy_statements(render_caddy(built)) == caddy_statements(render_caddy(plain))
    for value in (built.listen.host_port, built.keyport.url, built.upstream.url):
        assert value.isascii() and not set(value) & set(" ;{}\"'`#$\\\n\t%")


def test_the_statement_readers_see_an_injected_directive() -> None:
    """The property above would notice a value that closed a block or added a directive."""
    text = render_nginx(spec())
    hostile = text.replace("127.0.0.1:8000;", "127.0.0.1:8000; evil on;", 1)
    assert nginx_statements(hostile) != nginx_statements(text)
    caddyfile = render_caddy(spec())
    injected = caddyfile.replace("bind 127.0.0.1", "bind 127.0.0.1\n\tevil on", 1)
    assert caddy_statements(injected) != caddy_statements(caddyfile)
