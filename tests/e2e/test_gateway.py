"""Keyport as the gate of another service: the configurations `keyport proxy-config` prints,
run as is by Debian's nginx and Caddy in front of an upstream that echoes what it received
(docs/contract.md §7). Every client answer comes from one check by a real `keyport serve`."""

from __future__ import annotations

import http.client
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from keyport.domain.keys import generate_key
from tests.support.gateway import Answer, EchoUpstream, Proxy, request, send_raw
from tests.support.seed import change_key, create_keys, init_company
from tests.support.server import ServerProcess, keyport_env

USER_HEADER = "x-meetergo-api-user-id"
PHRASES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 429: "Too Many Requests"}
RULES = ("/orders=orders:read", "/orders/admin=orders:admin")
PROXIES = ["nginx", "caddy"]
IDENTITY = ("key-id", "company-id", "user-id", "user-role", "scopes")


def body(status: int, message: str) -> dict[str, object]:
    return {"statusCode": status, "message": message, "error": PHRASES[status]}


def assert_refused(answer: Answer, status: int, message: str) -> None:
    """Keyport's exact refusal, and nothing of the upstream or of the nginx-only headers."""
    assert answer.status == status, answer.body
    assert answer.json() == body(status, message)
    assert answer.headers["content-type"].startswith("application/json")
    assert "x-echo" not in answer.headers
    assert not [name for name in answer.headers if name.startswith("x-keyport")]
    if status == 401:
        assert answer.headers["www-authenticate"] == "Bearer"


@pytest.fixture(scope="module")
def upstream() -> Iterator[EchoUpstream]:
    with EchoUpstream() as echo:
        yield echo


def serve_keyport(directory: Path, **settings: str) -> ServerProcess:
    directory.mkdir(parents=True, exist_ok=True)
    wanted = {
        "KEYPORT_TRUSTED_PROXIES": "127.0.0.1,::1",
        "KEYPORT_AUTH_FAILURE_LIMIT": "100000",  # every test's failures come from one address
        **settings,
    }
    env = keyport_env(f"sqlite:///{directory / 'keyport.db'}", **wanted)
    init_company(env, "Acme", "owner@acme.test")
    return ServerProcess(env, directory / "keyport.log").start()


@pytest.fixture(scope="module")
def keyport(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = serve_keyport(tmp_path_factory.mktemp("keyport"))
    try:
        yield server
    finally:
        server.stop()


def start_proxy(
    kind: str, directory: Path, keyport: ServerProcess, upstream: EchoUpstream, **options: Any
) -> Proxy:
    return Proxy(
        kind, directory, keyport.base_url, upstream.url, keyport.env, RULES, **options
    ).start()


@pytest.fixture(scope="module", params=PROXIES)
def proxy(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    keyport: ServerProcess,
    upstream: EchoUpstream,
) -> Iterator[Proxy]:
    kind: str = request.param
    running = start_proxy(kind, tmp_path_factory.mktemp(kind), keyport, upstream)
    try:
        yield running
    finally:
        running.stop()


def new_key(keyport: ServerProcess, **options: Any) -> dict[str, Any]:
    """Like `keyport key create --days 30` (`options`: rate_limit, scopes, allowed_ips)."""
    return create_keys(keyport.env, 1, days=30, **options)[0]


def bearer(key: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {key['key']}"}


def owner_and_company(keyport: ServerProcess) -> tuple[str, str]:
    answer = request(keyport.base_url + "/v1/authorize", bearer(new_key(keyport)))
    found = answer.json()
    return found["userId"], found["companyId"]


# --- success: the upstream's answer, with the identity headers -------------------------------


def test_a_good_key_reaches_the_upstream_with_its_identity(
    proxy: Proxy, keyport: ServerProcess
) -> None:
    key = new_key(keyport)
    owner_id, company_id = owner_and_company(keyport)
    answer = request(proxy.base_url + "/anything?x=1", bearer(key), method="POST", body=b"hi")
    assert answer.status == 200
    assert answer.headers["x-echo"] == "yes"
    seen = answer.json()
    assert (seen["method"], seen["path"], seen["body"]) == ("POST", "/anything?x=1", "hi")
    headers = seen["headers"]
    assert headers["x-keyport-key-id"] == key["id"]
    assert headers["x-keyport-company-id"] == company_id
    assert headers["x-keyport-user-id"] == owner_id
    assert headers["x-keyport-user-role"] == "owner"
    assert headers["x-keyport-scopes"] == "*"
    assert headers["x-keyport-credential"] == "api_key"
    assert "x-keyport-refusal-status" not in headers
    assert "x-keyport-refusal-body" not in headers
    assert "authorization" not in headers  # the caller's key stays at the proxy


@pytest.mark.parametrize("kind", PROXIES)
def test_the_callers_key_is_forwarded_only_when_asked(
    kind: str, tmp_path: Path, keyport: ServerProcess, upstream: EchoUpstream
) -> None:
    options = {"options": ("--forward-authorization",)}
    running = start_proxy(kind, tmp_path / kind, keyport, upstream, **options)
    try:
        key = new_key(keyport)
        seen = request(running.base_url + "/x", bearer(key)).json()["headers"]
        assert seen["authorization"] == f"Bearer {key['key']}"
        assert seen["x-keyport-key-id"] == key["id"]
    finally:
        running.stop()


RESERVED_HEADER = "Headers named X-Keyport-* are Keyport's own: the client may not send them"


def test_spoofed_identity_headers_never_reach_the_upstream(
    proxy: Proxy, keyport: ServerProcess
) -> None:
    key = new_key(keyport, scopes=["orders:read"])
    spoofed = {f"X-Keyport-{name.title()}": "spoofed" for name in IDENTITY}
    spoofed["X-Keyport-Refusal-Status"] = "spoofed"
    answer = request(proxy.base_url + "/orders/1", {**bearer(key), **spoofed})
    if proxy.kind == "nginx":
        # nginx cannot delete headers by prefix, so its question carries them and Keyport
        # refuses it: the upstream is never asked (Caddy deletes them and asks).
        assert_refused(answer, 400, RESERVED_HEADER)
        return
    headers = answer.json()["headers"]
    assert headers["x-keyport-key-id"] == key["id"]
    assert headers["x-keyport-user-role"] == "owner"
    assert headers["x-keyport-scopes"] == "orders:read"
    assert "spoofed" not in str(headers)


def test_the_named_user_is_passed_on(proxy: Proxy, keyport: ServerProcess) -> None:
    key = new_key(keyport)
    owner_id, _ = owner_and_company(keyport)
    answer = request(proxy.base_url + "/x", {**bearer(key), USER_HEADER: owner_id})
    assert answer.json()["headers"]["x-keyport-user-id"] == owner_id


# --- every row of the §2 table through the proxy -------------------------------------------


def test_missing_and_invalid_credentials(proxy: Proxy) -> None:
    url = proxy.base_url + "/orders"
    assert_refused(request(url), 401, "Missing authorization header")
    assert_refused(request(url, {"Authorization": ""}), 401, "Missing authorization header")
    for value in ["Basic abc", "Bearer nope", f"Bearer {generate_key(uuid.uuid4())}"]:
        assert_refused(request(url, {"Authorization": value}), 401, "Invalid API key")
    # One WWW-Authenticate, never two (nginx's auth_request copies it onto a 401 by itself).
    answer = send_raw(proxy.base_url, "/orders", [("Authorization", "Bearer nope")])
    challenges = [v for k, v in answer.header_lines if k == "www-authenticate"]
    assert challenges == ["Bearer"]


def send_twice(proxy: Proxy, headers: list[tuple[str, str]]) -> Answer:
    connection = http.client.HTTPConnection(proxy.host, proxy.port, timeout=10)
    try:
        connection.putrequest("GET", "/x")
        for name, value in headers:
            connection.putheader(name, value)
        connection.endheaders()
        raw = connection.getresponse()
        return Answer(raw.status, {k.lower(): v for k, v in raw.getheaders()}, raw.read())
    finally:
        connection.close()


def test_duplicated_identity_headers_are_400(proxy: Proxy, keyport: ServerProcess) -> None:
    key = new_key(keyport)
    owner_id, _ = owner_and_company(keyport)
    auth = ("Authorization", f"Bearer {key['key']}")
    user = (USER_HEADER, owner_id)
    answer = send_twice(proxy, [auth, user, user])
    assert_refused(answer, 400, "Duplicate header: x-meetergo-api-user-id")
    answer = send_twice(proxy, [auth, auth])
    if proxy.kind == "caddy":
        assert_refused(answer, 400, "Duplicate header: authorization")
    else:  # nginx refuses a second Authorization line itself, before asking Keyport
        assert_refused(answer, 400, "Invalid HTTP request")


def test_requests_the_proxy_will_not_read_get_the_json_400(
    proxy: Proxy, keyport: ServerProcess
) -> None:
    auth = ("Authorization", f"Bearer {new_key(keyport)['key']}")
    answer = send_twice(proxy, [auth, ("Host", "a.example"), ("Host", "b.example")])
    if proxy.kind == "nginx":
        assert_refused(answer, 400, "Invalid HTTP request")
    else:  # Caddy (Go's HTTP server) answers in plain text; documented in docs/gateway.md
        assert (answer.status, answer.body) == (400, b"400 Bad Request")


def test_paths_the_proxy_cannot_read_get_a_json_400(proxy: Proxy, keyport: ServerProcess) -> None:
    auth = [("Authorization", f"Bearer {new_key(keyport)['key']}")]
    # A NUL: Caddy passes it to the printed check, nginx refuses it while reading the request.
    nul = send_raw(proxy.base_url, "/%00", auth)
    message = "Invalid request path" if proxy.kind == "caddy" else "Invalid HTTP request"
    assert_refused(nul, 400, message)
    broken = send_raw(proxy.base_url, "/a%zz", auth)
    if proxy.kind == "nginx":
        assert_refused(broken, 400, "Invalid HTTP request")
    else:  # Go's HTTP server refuses a broken escape itself (docs/gateway.md lists these)
        assert (broken.status, broken.body) == (400, b"400 Bad Request")


def test_bad_acting_user_headers(proxy: Proxy, keyport: ServerProcess) -> None:
    auth = bearer(new_key(keyport))
    url = proxy.base_url + "/x"
    assert_refused(
        request(url, {**auth, USER_HEADER: "not-a-uuid"}),
        400,
        "Invalid user: x-meetergo-api-user-id must be a UUID",
    )
    assert_refused(
        request(url, {**auth, USER_HEADER: str(uuid.uuid4())}),
        403,
        "Invalid user: no such user in this company",
    )


def test_deactivated_and_revoked_keys_stop_within_a_second(
    proxy: Proxy, keyport: ServerProcess
) -> None:
    key = new_key(keyport)
    url = proxy.base_url + "/x"
    for _ in range(5):  # cached in the server
        assert request(url, bearer(key)).status == 200
    change_key(keyport.env, "deactivate", key["id"])
    assert within_a_second(url, key, 401).json() == body(401, "API key is deactivated")
    change_key(keyport.env, "activate", key["id"])
    assert within_a_second(url, key, 200).headers["x-echo"] == "yes"
    change_key(keyport.env, "revoke", key["id"])
    assert_refused(within_a_second(url, key, 401), 401, "Invalid API key")


def within_a_second(url: str, key: dict[str, Any], status: int) -> Answer:
    started = time.monotonic()
    while True:
        answer = request(url, bearer(key))
        elapsed = time.monotonic() - started
        if answer.status == status:
            return answer
        assert elapsed < 1.0, f"still {answer.status} after {elapsed:.2f}s"
        time.sleep(0.02)


# --- scopes by path prefix ------------------------------------------------------------------


def test_path_prefixes_need_their_scopes_longest_prefix_first(
    proxy: Proxy, keyport: ServerProcess
) -> None:
    reader = bearer(new_key(keyport, scopes=["orders:read"]))
    for path in ["/orders", "/orders/7", "/orders/admin-notes", "/ordersx", "/other"]:
        assert request(proxy.base_url + path, reader).status == 200, path
    for path in ["/orders/admin", "/orders/admin/users", "/ORDERS/Admin"]:
        answer = request(proxy.base_url + path, reader)
        assert_refused(answer, 403, "Insufficient scope: requires orders:admin")
    stranger = bearer(new_key(keyport, scopes=["billing:read"]))
    assert_refused(
        request(proxy.base_url + "/orders/7", stranger),
        403,
        "Insufficient scope: requires orders:read",
    )
    assert request(proxy.base_url + "/ordersx", stranger).status == 200


# --- IP allowlists --------------------------------------------------------------------------


def test_an_ipv4_allowlist_sees_the_client_behind_the_proxy(
    proxy: Proxy, keyport: ServerProcess
) -> None:
    inside = bearer(new_key(keyport, allowed_ips=["127.0.0.0/8"]))
    assert request(proxy.base_url + "/x", inside).status == 200
    outside = bearer(new_key(keyport, allowed_ips=["192.0.2.0/24"]))
    # The client's own X-Forwarded-For is not believed: the proxy says who connected.
    forged = {**outside, "X-Forwarded-For": "192.0.2.10"}
    assert_refused(
        request(proxy.base_url + "/x", forged), 403, "API key is not allowed from this IP address"
    )


@pytest.mark.parametrize("kind", PROXIES)
def test_an_ipv6_allowlist_through_a_proxy_on_ipv6(
    kind: str, tmp_path: Path, keyport: ServerProcess, upstream: EchoUpstream
) -> None:
    running = start_proxy(kind, tmp_path / kind, keyport, upstream, host="::1")
    try:
        inside = bearer(new_key(keyport, allowed_ips=["::1/128", "10.0.0.0/8"]))
        assert request(running.base_url + "/x", inside).status == 200
        outside = bearer(new_key(keyport, allowed_ips=["2001:db8::/32"]))
        assert_refused(
            request(running.base_url + "/x", outside),
            403,
            "API key is not allowed from this IP address",
        )
    finally:
        running.stop()


def test_forwarded_for_from_an_untrusted_peer_is_ignored(
    tmp_path: Path, keyport: ServerProcess
) -> None:
    forged = {"X-Forwarded-For": "192.0.2.10"}
    key = new_key(keyport, allowed_ips=["192.0.2.0/24"])
    trusted = request(keyport.base_url + "/v1/authorize", {**bearer(key), **forged})
    assert trusted.status == 200  # from a trusted proxy, the forwarded address counts
    untrusting = serve_keyport(tmp_path, KEYPORT_TRUSTED_PROXIES="10.0.0.0/8")
    try:
        key = new_key(untrusting, allowed_ips=["192.0.2.0/24"])
        answer = request(untrusting.base_url + "/v1/authorize", {**bearer(key), **forged})
        assert answer.status == 403
        assert answer.json() == body(403, "API key is not allowed from this IP address")
    finally:
        untrusting.stop()


# --- rate limits, and Keyport down ----------------------------------------------------------


def test_a_keys_rate_limit_gives_429_with_retry_after(proxy: Proxy, keyport: ServerProcess) -> None:
    auth = bearer(new_key(keyport, rate_limit=1))  # bursts to 2
    url = proxy.base_url + "/x"
    assert [request(url, auth).status for _ in range(2)] == [200, 200]
    limited = request(url, auth)
    assert_refused(limited, 429, "Too Many Requests")
    assert limited.headers["retry-after"] == "60"
    assert limited.headers["ratelimit-limit"] == "2"
    assert limited.headers["ratelimit-remaining"] == "0"


@pytest.mark.parametrize("kind", PROXIES)
def test_keyport_stopped_is_503_never_a_success(
    kind: str, tmp_path: Path, upstream: EchoUpstream
) -> None:
    server = serve_keyport(tmp_path / "keyport")
    running = start_proxy(kind, tmp_path / kind, server, upstream)
    try:
        auth = bearer(new_key(server))
        assert request(running.base_url + "/x", auth).status == 200
        server.stop()
        answer = request(running.base_url + "/x", auth)
        assert answer.status == 503
        assert answer.json() == {
            "statusCode": 503,
            "message": "Service Unavailable",
            "error": "Service Unavailable",
        }
        assert "x-echo" not in answer.headers
    finally:
        running.stop()
        server.stop()


# --- cost: one connection to Keyport for many checks ----------------------------------------


def connections_to(port: int) -> set[int]:
    """The local ports of this machine's TCP sockets (any state, TIME-WAIT included) whose
    peer is `port` on the loopback: the proxy's side of its connections to Keyport."""
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            local, remote = row.split()[1:3]
            if int(remote.rsplit(":", 1)[1], 16) == port:
                ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


def test_checks_reuse_the_proxys_connection_to_keyport(
    proxy: Proxy, keyport: ServerProcess
) -> None:
    """A new connection per check would cost Keyport more than the check itself (nginx closes
    one whose answer had a body it did not read, so it asks with HEAD)."""
    auth = bearer(new_key(keyport))
    before = connections_to(keyport.port)
    for _ in range(30):
        assert request(proxy.base_url + "/x", auth).status == 200
    opened = connections_to(keyport.port) - before
    assert len(opened) <= 2, f"{len(opened)} connections for 30 sequential checks"
