"""keyport-client's ASGI middleware and FastAPI dependency against a recording stand-in for
`/v1/authorize` (tests/support/fake_keyport.py): what one guarded request asks, exactly once,
and what it hands on. The same integrations against a real Keyport, each on its real server,
are in tests/e2e/guarded/."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from litestar import Litestar, get
from litestar import Request as LitestarRequest
from litestar.middleware import DefineMiddleware

from keyport_client import Identity, Refusal
from keyport_client.asgi import KeyportMiddleware
from keyport_client.fastapi import Caller, require
from tests.support.asgi import call
from tests.support.fake_keyport import (
    IDENTITY,
    Asked,
    FakeKeyport,
    Reply,
    closed_address,
    fake_keyport,
    refusal,
    silent_listener,
)

KEY = "ak_live:6a0c5f0e-8d43-4b43-9a43-6f2a3f0e8d43:secret"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def keyport() -> Iterator[FakeKeyport]:
    with fake_keyport() as fake:
        yield fake


@pytest.fixture
def fake(keyport: FakeKeyport) -> FakeKeyport:
    keyport.asked.clear()
    keyport.answer(Reply())
    return keyport


def build_app(keyport_url: str, **options: Any) -> FastAPI:
    app = FastAPI()
    app.add_middleware(
        KeyportMiddleware,
        keyport_url=keyport_url,
        scopes={"/orders": "orders:read", "/orders/admin": "orders:admin"},
        exclude=["/health"],
        **options,
    )
    app.state.seen = []

    @app.get("/health")
    def health(request: Request) -> dict[str, Any]:
        return {"identity": "keyport" in request.state._state}

    @app.get("/me")
    def me(caller: Caller, request: Request) -> dict[str, Any]:
        app.state.seen.append(dict(request.headers))
        return {"keyId": caller.key_id, "credential": caller.credential}

    @app.get("/orders/{order_id}")
    def order(order_id: str, request: Request) -> dict[str, Any]:
        caller: Identity = request.state.keyport
        return {"order": order_id, "user": caller.user_id}

    @app.post("/orders", status_code=201)
    def create(caller: Identity = require("orders:write", cost=3)) -> dict[str, str]:
        return {"by": caller.user_id}

    @app.get("/reports", dependencies=[require("reports:read"), require("reports:export")])
    def reports() -> dict[str, bool]:
        return {"ok": True}

    return app


@pytest.fixture
def app(fake: FakeKeyport) -> FastAPI:
    return build_app(fake.url)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
        yield http


def only_question(fake: FakeKeyport) -> Asked:
    assert len(fake.asked) == 1, [a.target for a in fake.asked]
    return fake.asked[0]


async def test_an_allowed_request_reaches_the_app_with_its_identity(
    client: httpx.AsyncClient, fake: FakeKeyport
) -> None:
    answer = await client.get("/me", headers={**AUTH, "User-Agent": "curl/8"})
    assert answer.status_code == 200
    assert answer.json() == {"keyId": IDENTITY["keyId"], "credential": "api_key"}
    asked = only_question(fake)
    assert (asked.method, asked.target) == ("GET", "/v1/authorize")
    assert asked.header("authorization") == [f"Bearer {KEY}"]
    assert asked.header("x-forwarded-for") == ["203.0.113.7"]
    assert asked.header("x-forwarded-method") == ["GET"]
    assert asked.header("x-forwarded-uri") == ["/me"]
    assert asked.header("user-agent") == ["curl/8"]


async def test_a_personal_access_tokens_credential_is_named(
    client: httpx.AsyncClient, fake: FakeKeyport
) -> None:
    body = {**IDENTITY, "credential": "personal_access_token"}
    fake.answer(Reply(body=json.dumps(body).encode()))
    answer = await client.get("/me", headers=AUTH)
    assert answer.json()["credential"] == "personal_access_token"


async def test_path_and_route_needs_ride_on_one_question(
    client: httpx.AsyncClient, fake: FakeKeyport
) -> None:
    assert (await client.post("/orders", headers=AUTH)).status_code == 201
    target = only_question(fake).target
    assert target == "/v1/authorize?scope=orders%3Aread&scope=orders%3Awrite&cost=3"
    fake.asked.clear()
    assert (await client.get("/orders/admin/7", headers=AUTH)).status_code == 404
    assert only_question(fake).target == "/v1/authorize?scope=orders%3Aadmin"
    fake.asked.clear()
    assert (await client.get("/ORDERS/7", headers=AUTH)).status_code == 404  # any case
    assert only_question(fake).target == "/v1/authorize?scope=orders%3Aread"
    fake.asked.clear()
    assert (await client.get("/reports", headers=AUTH)).status_code == 200
    target = only_question(fake).target
    assert target == "/v1/authorize?scope=reports%3Aread&scope=reports%3Aexport"
    fake.asked.clear()
    assert (await client.get("/ordersx", headers=AUTH)).status_code == 404  # whole segments
    assert only_question(fake).target == "/v1/authorize"


async def test_a_refusal_is_keyports_answer_exactly_and_the_app_is_not_called(
    client: httpx.AsyncClient, fake: FakeKeyport
) -> None:
    limited = refusal(
        429,
        "Too Many Requests",
        "Too Many Requests",
        ("retry-after", "60"),
        ("ratelimit-limit", "2"),
        ("ratelimit-remaining", "0"),
        ("ratelimit-reset", "30"),
        ("x-request-id", "keyports-own"),
        ("x-keyport-refusal-status", "429"),
    )
    fake.answer(limited)
    answer = await client.post("/orders", headers=AUTH)
    assert answer.status_code == 429
    assert answer.content == limited.body
    assert answer.headers["retry-after"] == "60"
    assert answer.headers["ratelimit-limit"] == "2"
    assert answer.headers["ratelimit-remaining"] == "0"
    assert answer.headers["ratelimit-reset"] == "30"
    assert answer.headers["content-type"] == "application/json"
    assert "x-request-id" not in answer.headers
    assert "x-keyport-refusal-status" not in answer.headers
    missing = refusal(
        401, "Missing authorization header", "Unauthorized", ("www-authenticate", "Bearer")
    )
    fake.answer(missing)
    answer = await client.get("/me")
    assert (answer.status_code, answer.content) == (401, missing.body)
    assert answer.headers["www-authenticate"] == "Bearer"


async def test_rate_limit_and_credits_headers_are_copied_onto_the_apps_answer(
    client: httpx.AsyncClient, fake: FakeKeyport
) -> None:
    body = {**IDENTITY, "credits": {"remaining": 41}}
    fake.answer(
        Reply(
            body=json.dumps(body).encode(),
            headers=[
                ("content-type", "application/json"),
                ("ratelimit-limit", "200"),
                ("ratelimit-remaining", "199"),
                ("ratelimit-reset", "1"),
                ("x-keyport-credits-remaining", "41"),
                ("x-keyport-key-id", IDENTITY["keyId"]),
            ],
        )
    )
    answer = await client.get("/me", headers=AUTH)
    assert answer.status_code == 200
    assert answer.headers["ratelimit-remaining"] == "199"
    assert answer.headers["x-keyport-credits-remaining"] == "41"
    assert "x-keyport-key-id" not in answer.headers


async def test_client_sent_forwarded_for_and_keyport_headers_are_not_believed(
    app: FastAPI, client: httpx.AsyncClient, fake: FakeKeyport
) -> None:
    spoofed = {"X-Forwarded-For": "192.0.2.10", "X-Keyport-User-Id": "x", "X-Keyport_Scopes": "*"}
    assert (await client.get("/me", headers={**AUTH, **spoofed})).status_code == 200
    assert only_question(fake).header("x-forwarded-for") == ["203.0.113.7"]
    seen = app.state.seen[-1]
    assert not [name for name in seen if name.startswith(("x-keyport", "x_keyport"))]


async def test_behind_the_apps_own_trusted_proxies_the_forwarded_client_counts(
    fake: FakeKeyport,
) -> None:
    app = build_app(fake.url, trusted_proxies=["203.0.113.0/24"])
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
        forwarded = {"X-Forwarded-For": "192.0.2.99, 198.51.100.4, 203.0.113.9"}
        assert (await http.get("/me", headers={**AUTH, **forwarded})).status_code == 200
    assert only_question(fake).header("x-forwarded-for") == ["198.51.100.4"]


async def test_excluded_and_unclean_paths_ask_nothing(
    app: FastAPI, client: httpx.AsyncClient, fake: FakeKeyport
) -> None:
    answer = await client.get("/health")
    assert (answer.status_code, answer.json()) == (200, {"identity": False})
    assert (await client.get("/health/deep")).status_code == 404
    assert fake.asked == []
    # As a server hands them on, decoded (httpx would tidy them up before sending).
    for path in ["/health/../me", "/orders/./7", "/orders\\7", "//me", "/health/..", "/me\x00"]:
        scope = {
            "type": "http",
            "method": "GET",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": [(b"authorization", f"Bearer {KEY}".encode())],
            "client": ("127.0.0.1", 5000),
        }
        status, _, body = await call(app, scope)
        assert status == 400, path
        assert json.loads(body) == {
            "statusCode": 400,
            "message": "Invalid request path",
            "error": "Bad Request",
        }
    assert fake.asked == []
    # An excluded prefix lets its own spelling through only.
    assert (await client.get("/HEALTH", headers=AUTH)).status_code == 404
    assert len(fake.asked) == 1


async def test_keyport_unreachable_slow_or_failing_is_503_never_the_app() -> None:
    unavailable = {
        "statusCode": 503,
        "message": "Service Unavailable",
        "error": "Service Unavailable",
    }

    async def ask(url: str, **options: Any) -> httpx.Response:
        transport = httpx.ASGITransport(app=build_app(url, **options))
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
            return await http.get("/me", headers=AUTH)

    answer = await ask(closed_address())
    assert (answer.status_code, answer.json()) == (503, unavailable)
    with silent_listener() as hung:
        started = time.monotonic()
        answer = await ask(hung, timeout=0.3)
        assert 0.25 < time.monotonic() - started < 2
    assert (answer.status_code, answer.json()) == (503, unavailable)
    with fake_keyport() as failing:
        for reply in [Reply(status=500), Reply(status=200, body=b"not json"), Reply(status=302)]:
            failing.answer(reply)
            answer = await ask(failing.url)
            assert (answer.status_code, answer.json()) == (503, unavailable)


async def test_a_refusal_hook_may_reshape_the_answer(fake: FakeKeyport) -> None:
    def hook(refused: Refusal) -> Refusal:
        return Refusal(refused.status, b'{"problem":"denied"}', refused.headers)

    fake.answer(refusal(403, "Insufficient scope: requires x:y", "Forbidden"))
    transport = httpx.ASGITransport(app=build_app(fake.url, on_refusal=hook))
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
        answer = await http.get("/me", headers=AUTH)
    assert (answer.status_code, answer.json()) == (403, {"problem": "denied"})


async def test_questions_share_one_keep_alive_connection(
    client: httpx.AsyncClient, fake: FakeKeyport
) -> None:
    for _ in range(20):
        assert (await client.get("/me", headers=AUTH)).status_code == 200
    assert len(fake.asked) == 20
    assert len(fake.connections()) == 1


async def test_chunked_and_closing_answers_are_read(
    client: httpx.AsyncClient, fake: FakeKeyport
) -> None:
    fake.answer(Reply(chunked=True))
    assert (await client.get("/me", headers=AUTH)).json()["keyId"] == IDENTITY["keyId"]
    fake.answer(Reply(close=True))
    for _ in range(3):
        assert (await client.get("/me", headers=AUTH)).status_code == 200
    assert len(fake.connections()) >= 3


async def test_lifespan_and_websockets_pass_through_untouched(fake: FakeKeyport) -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope)

    guarded = KeyportMiddleware(app, fake.url)  # type: ignore[arg-type]
    for kind in ["lifespan", "websocket"]:
        scope = {"type": kind, "path": "/ws", "headers": [], "state": {}}
        await guarded(scope, None, None)  # type: ignore[arg-type]
        assert seen[-1] is scope
        assert scope["state"] == {}
    assert fake.asked == []


async def test_a_route_the_middleware_did_not_ask_about_fails_closed() -> None:
    app = FastAPI()

    @app.post("/orders")
    def create(caller: Identity = require("orders:write")) -> dict[str, str]:
        return {"by": caller.user_id}

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
        assert (await http.post("/orders", headers=AUTH)).status_code == 500


async def test_litestar_takes_it_as_its_middleware(fake: FakeKeyport) -> None:
    @get("/me")
    async def me(request: LitestarRequest[Any, Any, Any]) -> dict[str, str]:
        return {"keyId": request.state.keyport.key_id}

    app = Litestar(
        [me],
        middleware=[DefineMiddleware(KeyportMiddleware, keyport_url=fake.url)],  # type: ignore[arg-type]
    )
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
        assert (await http.get("/me", headers=AUTH)).json() == {"keyId": IDENTITY["keyId"]}
        assert (await http.get("/me")).status_code == 200  # the stand-in admits anyone
    assert [asked.target for asked in fake.asked] == ["/v1/authorize"] * 2


async def test_a_mounted_apps_routes_are_found_and_matched_after_the_mount(
    fake: FakeKeyport,
) -> None:
    inner = FastAPI()

    @inner.post("/orders")
    def create(caller: Identity = require("orders:write")) -> dict[str, str]:
        return {"by": caller.user_id}

    outer = FastAPI()
    outer.mount("/api", inner)
    outer.add_middleware(
        KeyportMiddleware, keyport_url=fake.url, scopes={"/api/orders": "orders:read"}
    )
    transport = httpx.ASGITransport(app=outer)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
        assert (await http.post("/api/orders", headers=AUTH)).status_code == 200
    target = only_question(fake).target
    assert target == "/v1/authorize?scope=orders%3Aread&scope=orders%3Awrite"
