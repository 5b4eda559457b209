"""keyport-client's own rules: which paths are asked about with which scopes, which client
address Keyport is told, and what an answer of Keyport's means (clients/python)."""

from __future__ import annotations

import json

import pytest

from keyport_client._addresses import ClientAddress
from keyport_client._decision import UNAVAILABLE, Allowed, Needs, Refusal, decide, needs
from keyport_client._paths import PathRules, is_clean

ANSWER = {
    "keyId": "k",
    "companyId": "c",
    "userId": "u",
    "userRole": "member",
    "scopes": ["orders:read"],
    "expiresAt": "2030-01-01T00:00:00Z",
}


@pytest.mark.parametrize(
    "path",
    ["/", "/orders", "/orders/7", "/a.b/c..d/.e", "/ünï/çødé", "/a b"],
)
def test_clean_paths(path: str) -> None:
    assert is_clean(path)


@pytest.mark.parametrize(
    "path",
    [
        "",
        "orders",
        "//orders",
        "/orders//7",
        "/a/./b",
        "/a/../b",
        "/..",
        "/a/.",
        "/a\\b",
        "/a\x00",
        "/a\x1fb",
        "/a\x85b",
    ],
)
def test_unclean_paths(path: str) -> None:
    assert not is_clean(path)


def test_scopes_by_prefix_whole_segments_longest_first_any_case() -> None:
    rules = PathRules({"/orders": "orders:read", "/orders/admin/": "orders:admin", "/": "api:use"})
    assert rules.scopes_for("/orders") == ("orders:read",)
    assert rules.scopes_for("/orders/7") == ("orders:read",)
    assert rules.scopes_for("/ORDERS/Admin/users") == ("orders:admin",)
    assert rules.scopes_for("/orders/admin-notes") == ("orders:read",)
    assert rules.scopes_for("/ordersx") == ("api:use",)
    assert PathRules({"/a": ["x:y", "z:w"]}).scopes_for("/a/b") == ("x:y", "z:w")
    assert PathRules().scopes_for("/anything") == ()


def test_excluded_prefixes_whole_segments_in_their_own_case() -> None:
    rules = PathRules(exclude=["/health", "/static/"])
    assert rules.excluded("/health") and rules.excluded("/static/app.js")
    assert not rules.excluded("/healthz")
    assert not rules.excluded("/Health")


@pytest.mark.parametrize(
    ("scopes", "exclude"),
    [
        ({"orders": "a:b"}, ()),
        ({"/a/../b": "a:b"}, ()),
        ({"/a": "a b"}, ()),
        ({"/a": ""}, ()),
        ({"/a": "x:y", "/A": "x:z"}, ()),
        (None, ["health"]),
    ],
)
def test_rules_that_cannot_work_are_refused_at_start(scopes: object, exclude: object) -> None:
    with pytest.raises(ValueError):
        PathRules(scopes, exclude)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        PathRules(exclude="/health")


def test_the_client_address_is_the_peer_unless_it_is_one_of_the_apps_proxies() -> None:
    assert ClientAddress().of("10.0.0.5", ["192.0.2.1"]) == "10.0.0.5"
    behind = ClientAddress("10.0.0.0/8, ::1")
    assert behind.of("198.51.100.1", ["192.0.2.1"]) == "198.51.100.1"
    assert behind.of("10.0.0.5", ["192.0.2.1, 198.51.100.2, 10.0.0.7"]) == "198.51.100.2"
    assert behind.of("10.0.0.5", ["192.0.2.1", "[2001:db8::1]:443"]) == "2001:db8::1"
    assert behind.of("::1", ["not-an-address"]) == "::1"
    assert behind.of("10.0.0.5", []) == "10.0.0.5"
    assert behind.of("10.0.0.5", ["10.0.0.9"]) == "10.0.0.9"
    assert behind.of(None, ["192.0.2.1"]) is None


def test_an_allowed_answer_is_an_identity_with_the_headers_to_copy() -> None:
    headers = [("ratelimit-limit", "200"), ("x-request-id", "r"), ("x-keyport-user-id", "u")]
    decided = decide(200, headers, json.dumps(ANSWER).encode(), Needs(("orders:read",)))
    assert isinstance(decided, Allowed)
    identity = decided.identity
    assert (identity.key_id, identity.user_role, identity.scopes) == (
        "k",
        "member",
        ["orders:read"],
    )
    assert (identity.credential, identity.credits_remaining) == ("api_key", None)
    assert identity.expires_at is not None and identity.expires_at.year == 2030
    assert decided.headers == [("ratelimit-limit", "200")]
    token = {**ANSWER, "credential": "personal_access_token", "credits": {"remaining": 3}}
    decided = decide(200, [], json.dumps(token).encode(), Needs())
    assert isinstance(decided, Allowed)
    assert (decided.identity.credential, decided.identity.credits_remaining) == (
        "personal_access_token",
        3,
    )


def test_a_4xx_is_passed_on_with_its_own_headers_and_anything_else_is_503() -> None:
    headers = [
        ("content-type", "application/json"),
        ("www-authenticate", "Bearer"),
        ("retry-after", "60"),
        ("ratelimit-reset", "3"),
        ("x-keyport-refusal-body", "{}"),
        ("x-request-id", "r"),
    ]
    decided = decide(401, headers, b"{}", Needs())
    assert decided == Refusal(401, b"{}", headers[:4])
    for status, body in [(500, b"{}"), (503, b"{}"), (302, b""), (200, b"[]"), (200, b"{")]:
        assert decide(status, [], body, Needs()) is UNAVAILABLE
    assert json.loads(UNAVAILABLE.body) == {
        "statusCode": 503,
        "message": "Service Unavailable",
        "error": "Service Unavailable",
    }


def test_needs_add_up_and_say_what_they_cover() -> None:
    route = needs(["orders:write"], 2) + needs(["orders:write", "audit:log"], 3)
    assert route == Needs(("orders:write", "audit:log"), 5)
    asked = Needs(("orders:read",)) + route
    assert asked.scopes == ("orders:read", "orders:write", "audit:log")
    assert asked.covers(needs(["audit:log"], None)) and asked.covers(needs([], 5))
    assert not asked.covers(needs(["x:y"], None)) and not asked.covers(needs([], 6))
    for scopes, cost in [((), None), (("a b",), None), ((), -1), ((), 1.5), ((), True)]:
        with pytest.raises(TypeError):
            needs(scopes, cost)  # type: ignore[arg-type]


def test_keyports_address_and_the_question_on_the_wire() -> None:
    from keyport_client._wire import Endpoint, request_bytes

    endpoint = Endpoint.parse("https://keys.example.com/keyport/")
    assert (endpoint.port, endpoint.base_path, endpoint.host_header) == (
        443,
        "/keyport",
        b"keys.example.com",
    )
    assert Endpoint.parse("http://[::1]:8000").host_header == b"[::1]:8000"
    for bad in ["keys.example.com", "ftp://x", "http://x/?a=1", "http://u:p@x"]:
        with pytest.raises(ValueError):
            Endpoint.parse(bad)
    sent = request_bytes(
        Endpoint.parse("http://127.0.0.1:8000"),
        b"/v1/authorize?scope=a%3Ab",
        [(b"authorization", b"Bearer k"), (b"authorization", b"Bearer j")],
    )
    assert sent == (
        b"GET /v1/authorize?scope=a%3Ab HTTP/1.1\r\nhost: 127.0.0.1:8000\r\n"
        b"authorization: Bearer k\r\nauthorization: Bearer j\r\n\r\n"
    )
    with pytest.raises(ValueError):
        request_bytes(endpoint, b"/", [(b"x-forwarded-uri", b"/a\r\nx-evil: 1")])
