"""`keyport proxy-config`: what it accepts, and the parts of the printed files the gateway
tests rely on (the files themselves run under real nginx and Caddy in tests/e2e)."""

from __future__ import annotations

import pytest

from keyport.proxy_config.caddy import render_caddy
from keyport.proxy_config.nginx import render_nginx
from keyport.proxy_config.spec import ProxySpec, SpecError, build_spec, parse_rule


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
    ],
)
def test_bad_addresses_are_refused(listen: str, keyport: str) -> None:
    with pytest.raises(SpecError):
        build_spec(listen, keyport, "http://u", ())


def test_a_prefix_given_twice_is_refused() -> None:
    with pytest.raises(SpecError, match="more than once"):
        build_spec("h:80", "http://k", "http://u", ("/a=a:b", "/a/=c:d"))


def test_nginx_asks_once_per_scope_and_matches_whole_segments() -> None:
    text = render_nginx(spec("/orders=orders:read"), "keyport proxy-config nginx")
    assert "proxy_pass http://keyport/v1/authorize?scope=orders:read;" in text
    assert "location ~* ^/orders(/|$) {" in text
    assert "error_page 401 403 500 = @keyport_refusal;" in text
    assert "return 429 $keyport_refusal_body;" in text
    assert text.count("proxy_set_header X-Keyport-Key-Id $keyport_key_id;") == 2
    assert "daemon off;" in text and "pid nginx.pid;" in text


def test_caddy_strips_client_headers_first_and_drops_the_refusal_headers() -> None:
    text = render_caddy(spec("/orders=orders:read"), "keyport proxy-config caddy")
    assert text.index("request_header -X-Keyport-*") < text.index("forward_auth")
    assert "uri /v1/authorize?scope=orders:read" in text
    # Unscoped paths ask with an empty query: a bare path would keep the client's own query.
    assert "uri /v1/authorize?\n" in text
    assert "header_down -X-Keyport-Refusal-Body" in text
    assert "admin off" in text
    assert "@scope1 path /orders /orders/*" in text
