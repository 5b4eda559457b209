"""The printed nginx and Caddy configurations in front of upstreams that read a request as common
parsers do — WHATWG URL parsing (Node), a percent-decoding ASGI server (uvicorn) and WSGI
(wsgiref) — with a real `keyport serve` behind them:

- no spelling of a path reaches the upstream that it reads as a path under a stricter
  `--scope` rule than the proxy applied (a backslash, `%5C`, `%2F`, `%2E`, dot segments,
  doubled slashes…): such paths get Keyport's JSON 400, `%2F` passes only under a prefix
  allowed with `--allow-encoded-slash`, where scopes still read it as a separator;
- the upstream receives exactly Keyport's `X-Keyport-*` identity, never a client's own
  (`X_Keyport_*` spellings included), and not the caller's `Authorization`.

Each proxy and upstream starts once for the module (six proxies, three upstreams).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.gateway import Answer, ParsingUpstream, Proxy, send_raw
from tests.support.seed import create_keys, init_company
from tests.support.server import ServerProcess, keyport_env

RULES = (
    "/orders=orders:read",
    "/orders/admin=orders:admin",
    "/files=files:read",
    "/files/admin=files:admin",
)
OPTIONS = ("--allow-encoded-slash", "/files")
# Under these a key holding only orders:read and files:read must never be answered.
STRICTER = ("/orders/admin", "/files/admin")
PARSERS = ("whatwg", "asgi", "wsgi")
GATEWAYS = [(proxy, parser) for proxy in ("nginx", "caddy") for parser in PARSERS]
REFUSED_PATH = {"statusCode": 400, "message": "Invalid request path", "error": "Bad Request"}
# nginx itself refuses a path it cannot decode (a NUL, `..` above the root) before the printed
# check sees it; the printed file answers that as Keyport answers a request it cannot read.
UNREADABLE = {"statusCode": 400, "message": "Invalid HTTP request", "error": "Bad Request"}
NGINX_UNREADABLE = {"/orders/%00/admin"}
IDENTITY = ("key-id", "company-id", "user-id", "user-role", "scopes", "credential")


@pytest.fixture(scope="module")
def keyport(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    directory = tmp_path_factory.mktemp("keyport")
    env = keyport_env(
        f"sqlite:///{directory / 'keyport.db'}",
        KEYPORT_TRUSTED_PROXIES="127.0.0.1,::1",
        KEYPORT_AUTH_FAILURE_LIMIT="100000",
    )
    init_company(env, "Acme", "owner@acme.test")
    server = ServerProcess(env, directory / "keyport.log").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def upstreams(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ParsingUpstream]]:
    directory = tmp_path_factory.mktemp("upstreams")
    started = [ParsingUpstream(parser, directory) for parser in PARSERS]
    try:
        yield {upstream.parser: upstream.__enter__() for upstream in started}
    finally:
        for upstream in started:
            upstream.__exit__()


@pytest.fixture(scope="module", params=GATEWAYS, ids=["-".join(g) for g in GATEWAYS])
def gateway(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    keyport: ServerProcess,
    upstreams: dict[str, ParsingUpstream],
) -> Iterator[Proxy]:
    kind, parser = request.param
    upstream = upstreams[parser]
    directory = tmp_path_factory.mktemp(f"{kind}-{parser}")
    env = keyport.env
    running = Proxy(kind, directory, keyport.base_url, upstream.url, env, RULES, OPTIONS).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def reader(keyport: ServerProcess) -> dict[str, Any]:
    """A key for orders:read and files:read, never for the admin paths below them."""
    scopes = ["orders:read", "files:read"]
    return create_keys(keyport.env, 1, days=30, scopes=scopes, rate_limit=1_000_000)[0]


def auth(key: dict[str, Any]) -> list[tuple[str, str]]:
    return [("Authorization", f"Bearer {key['key']}")]


def under_stricter_rule(path: str) -> str | None:
    lowered = path.lower()
    for prefix in STRICTER:
        if lowered == prefix or lowered.startswith(prefix + "/"):
            return prefix
    return None


def assert_path_refused(answer: Answer, target: str, *, unreadable: bool = False) -> None:
    assert answer.status == 400, (target, answer.status, answer.body)
    assert answer.json() == (UNREADABLE if unreadable else REFUSED_PATH), target
    assert answer.headers["content-type"].startswith("application/json")
    assert "x-echo" not in answer.headers


def assert_never_under_a_stricter_rule(answer: Answer, target: str) -> None:
    """Refused, or answered by the upstream at a path no stricter rule covers."""
    if answer.status == 400:
        assert answer.json() in (REFUSED_PATH, UNREADABLE), target
        assert "x-echo" not in answer.headers
    elif answer.status == 403:
        assert answer.json()["message"].startswith("Insufficient scope: requires"), target
    else:
        assert answer.status == 200, (target, answer.status, answer.body)
        read = answer.json()["path"]
        assert under_stricter_rule(read) is None, f"{target!r} reached {read!r} upstream"


# Spellings the review used, and their relatives: each would reach /orders/admin or
# /files/admin through at least one of the upstreams if forwarded as is.
STRICTER_SPELLINGS = [
    "/orders\\admin/x",
    "/orders%5Cadmin/x",
    "/orders%5cadmin",
    "/orders%2Fadmin/x",
    "/orders%2fadmin",
    "/orders/x/%2e%2e/admin/y",
    "/orders/%2E%2E/orders/admin",
    "/orders/x/.%2e/admin",
    "/orders/x/../admin/y",
    "/orders/x/..",
    "/orders/admin//../x",
    "/orders//admin/x",
    "//orders/admin",
    "/orders/./admin",
    "/orders/x/..%2Fadmin",
    "/orders/admin/..",
    "/orders/admin/.",
    "/orders/admin#/../x",
    "/orders/%00/admin",
    "/orders/%09admin",
    "/files%2Fadmin/x",
    "/files/x/..%2Fadmin",
    "/files/x%2F..%2Fadmin",
    "/files/x%2F%2F..%2Fadmin",
    "/files/x%2F.%2E%2Fadmin",
    "/orders;x/admin",  # Java servlet containers read /orders/admin
    "/orders/x?next=ok",  # not refused: the query is not the path
]


@pytest.mark.parametrize("target", STRICTER_SPELLINGS)
def test_spellings_of_a_path_are_refused_with_keyports_400(
    gateway: Proxy, reader: dict[str, Any], target: str
) -> None:
    answer = send_raw(gateway.base_url, target, auth(reader))
    if target == "/orders/x?next=ok":
        assert answer.status == 200
        assert answer.json()["path"] == "/orders/x"
    else:
        unreadable = gateway.kind == "nginx" and target in NGINX_UNREADABLE
        assert_path_refused(answer, target, unreadable=unreadable)


def test_plain_and_allowed_spellings_pass_and_scopes_read_encoded_slashes(
    gateway: Proxy, reader: dict[str, Any]
) -> None:
    upstream = gateway.upstream_url
    read = {"whatwg": "/files/a%2Fb", "asgi": "/files/a/b", "wsgi": "/files/a/b"}
    seen = send_raw(gateway.base_url, "/files/a%2Fb", auth(reader))
    assert seen.status == 200, seen.body
    assert seen.json()["path"] in read.values(), upstream
    # An allowed encoded slash is still a separator to the scope rules.
    for target in ["/files/admin%2Fx", "/files/ADMIN%2f", "/orders/%61dmin/x", "/ORDERS/Admin"]:
        refused = send_raw(gateway.base_url, target, auth(reader))
        assert refused.status == 403, (target, refused.body)
        assert refused.json()["message"].startswith("Insufficient scope: requires")
    for target in ["/orders/7", "/orders/admin-notes", "/orders/..x", "/orders/x.", "/files/a"]:
        passed = send_raw(gateway.base_url, target, auth(reader))
        assert passed.status == 200, (target, passed.body)
        assert under_stricter_rule(passed.json()["path"]) is None


_PIECES = st.sampled_from(
    ["orders", "files", "admin", "ADMIN", "x", ".", "..", "", "%2e", "%2E.", "%2f", "%2F..",
     "%5c", "\\", "%61dmin", "admin%2F", "#", ";", "%3F", "%00", "%25", "a%2Fb"]
)  # fmt: skip


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(segments=st.lists(_PIECES, min_size=1, max_size=5))
def test_no_spelling_reaches_a_path_under_a_stricter_rule(
    gateway: Proxy, reader: dict[str, Any], segments: list[str]
) -> None:
    target = "/" + "/".join(segments)
    assert_never_under_a_stricter_rule(send_raw(gateway.base_url, target, auth(reader)), target)


# --- what the upstream receives --------------------------------------------------------------

SPOOFED = [
    ("X-Keyport-Key-Id", "spoofed"),
    ("X-Keyport-Scopes", "spoofed"),
    ("X_Keyport_Key_Id", "spoofed"),
    ("X_Keyport_Scopes", "spoofed"),
    ("x_keyport-user-role", "spoofed"),
    ("X-Keyport_Company_Id", "spoofed"),
    ("X-KEYPORT-CREDENTIAL", "spoofed"),
    ("X_KEYPORT_CREDENTIAL", "spoofed"),
    ("X-Keyport-Credits-Remaining", "spoofed"),
    ("X-Keyport-Refusal-Status", "spoofed"),
    ("X_Keyport_Extra", "spoofed"),
]


def identity_seen(answer: Answer) -> dict[str, str]:
    """The upstream's headers named, with `_` read as `-`, like X-Keyport-*."""
    headers: dict[str, str] = answer.json()["headers"]
    return {
        name.replace("_", "-")[len("x-keyport-") :]: value
        for name, value in headers.items()
        if name.replace("_", "-").startswith("x-keyport-")
    }


RESERVED_HEADER = {
    "statusCode": 400,
    "message": "Headers named X-Keyport-* are Keyport's own: the client may not send them",
    "error": "Bad Request",
}


def test_the_upstream_receives_exactly_keyports_identity(
    gateway: Proxy, keyport: ServerProcess, reader: dict[str, Any]
) -> None:
    answer = send_raw(gateway.base_url, "/orders/7", [*SPOOFED, *auth(reader)])
    if gateway.kind == "nginx":
        # nginx's question to /v1/authorize carries the client's X-Keyport-* headers, which
        # Keyport refuses (see below); without them the same request passes.
        assert (answer.status, answer.json()) == (400, RESERVED_HEADER), answer.body
        answer = send_raw(gateway.base_url, "/orders/7", auth(reader))
    assert answer.status == 200, answer.body
    seen = identity_seen(answer)
    assert sorted(seen) == sorted(IDENTITY)
    assert seen["key-id"] == reader["id"]
    assert seen["scopes"] == "orders:read files:read"
    assert seen["user-role"] == "owner"
    assert seen["credential"] == "api_key"
    assert "spoofed" not in answer.body.decode()
    # The caller's key stays at the proxy (an option forwards it).
    assert "authorization" not in answer.json()["headers"]


def test_other_client_sent_keyport_names_never_reach_the_upstream(
    gateway: Proxy, reader: dict[str, Any]
) -> None:
    extra = [("X-Keyport-Extra", "spoofed"), ("x-keyport-anything-else", "spoofed")]
    answer = send_raw(gateway.base_url, "/orders/7", [*extra, *auth(reader)])
    if gateway.kind == "nginx":
        # Stock nginx cannot delete headers by prefix; its question to /v1/authorize carries
        # them, and Keyport refuses such a question: the upstream is never asked.
        assert (answer.status, answer.json()) == (400, RESERVED_HEADER), answer.body
        return
    assert answer.status == 200, answer.body  # Caddy deletes them before it asks
    assert sorted(identity_seen(answer)) == sorted(IDENTITY)


def test_the_proxy_log_has_no_warnings(gateway: Proxy) -> None:
    """Caddy once warned about an unnecessary `header_up X-Forwarded-For` on every start."""
    log = (gateway.directory / "proxy.log").read_text(errors="replace")
    if gateway.kind == "caddy":
        # Its only warnings: the printed file turns automatic HTTPS and the admin API off.
        expected = ("automatic HTTPS is completely disabled", "admin endpoint disabled")
        warnings = [
            line
            for line in log.splitlines()
            if '"level":"warn"' in line and not any(text in line for text in expected)
        ]
        assert warnings == []
    else:
        assert "[warn]" not in (gateway.directory / "error.log").read_text(errors="replace")


def test_the_wsgi_upstream_would_have_read_an_underscored_name(tmp_path: Path) -> None:
    """The reason `X_Keyport_*` matters: wsgiref reads it as X-Keyport-* (without a proxy)."""
    with ParsingUpstream("wsgi", tmp_path) as upstream:
        answer = send_raw(upstream.url, "/x", [("X_Keyport_Key_Id", "spoofed")])
    assert identity_seen(answer) == {"key-id": "spoofed"}
