"""keyport-client's Flask extension and its blocking transport against a recording stand-in
for `/v1/authorize` (tests/support/fake_keyport.py): one question per request, with the view's
own needs, and one pool of connections per process (a pre-forking server's children never use
their parent's sockets). Django's middleware runs in tests/e2e/guarded/ (its settings are per
process)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, g, request

from keyport_client._decision import Allowed, Needs
from keyport_client._gate import Gate, Incoming
from keyport_client.flask import Keyport
from tests.support.fake_keyport import IDENTITY, FakeKeyport, Reply, fake_keyport, refusal

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


def build_app(keyport_url: str, **options: Any) -> Flask:
    app = Flask(__name__)
    keyport = Keyport(
        app, keyport_url, scopes={"/orders": "orders:read"}, exclude=["/health"], **options
    )
    order: list[str] = []

    @app.before_request
    def apps_own() -> None:
        order.append("app")

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"identity": g.get("keyport") is not None}

    @app.get("/me")
    def me() -> dict[str, Any]:
        return {"keyId": g.keyport.key_id, "order": order}

    @app.get("/headers")
    def headers() -> dict[str, str]:
        return dict(request.headers)

    @app.post("/orders")
    @keyport.require("orders:write", cost=2)
    def create() -> tuple[dict[str, str], int]:
        return {"by": g.keyport.user_id}, 201

    @keyport.require("orders:write")  # above the route: Flask registers the bare view
    @app.delete("/orders/<order_id>")
    def delete(order_id: str) -> tuple[str, int]:
        return "", 204

    return app


def test_an_allowed_request_reaches_the_view_before_any_other_before_request(
    fake: FakeKeyport,
) -> None:
    app = build_app(fake.url)
    answer = app.test_client().get("/me", headers=AUTH)
    assert answer.status_code == 200
    assert answer.json == {"keyId": IDENTITY["keyId"], "order": ["app"]}
    (asked,) = fake.asked
    assert asked.target == "/v1/authorize"
    assert asked.header("authorization") == [f"Bearer {KEY}"]
    assert asked.header("x-forwarded-for") == ["127.0.0.1"]
    assert (asked.header("x-forwarded-method"), asked.header("x-forwarded-uri")) == (
        ["GET"],
        ["/me"],
    )


def test_the_views_needs_ride_on_the_one_question(fake: FakeKeyport) -> None:
    app = build_app(fake.url)
    assert app.test_client().post("/orders", headers=AUTH).status_code == 201
    (asked,) = fake.asked
    assert asked.target == "/v1/authorize?scope=orders%3Aread&scope=orders%3Awrite&cost=2"


def test_a_decorator_above_the_route_counts_too(fake: FakeKeyport) -> None:
    app = build_app(fake.url)
    for _ in range(2):
        assert app.test_client().delete("/orders/7", headers=AUTH).status_code == 204
    assert [a.target for a in fake.asked] == [
        "/v1/authorize?scope=orders%3Aread&scope=orders%3Awrite"
    ] * 2


def test_a_view_keyport_was_not_asked_about_fails_closed(fake: FakeKeyport) -> None:
    app = Flask(__name__)

    @app.post("/orders")
    @Keyport.require("orders:write")
    def create() -> str:
        return "made"

    assert app.test_client().post("/orders", headers=AUTH).status_code == 500


def test_a_refusal_is_keyports_answer_and_no_view_runs(fake: FakeKeyport) -> None:
    refused = refusal(401, "API key has expired", "Unauthorized", ("www-authenticate", "Bearer"))
    fake.answer(refused)
    answer = build_app(fake.url).test_client().get("/me", headers=AUTH)
    assert (answer.status_code, answer.data) == (401, refused.body)
    assert answer.headers["www-authenticate"] == "Bearer"
    assert answer.headers["content-type"] == "application/json"


def test_excluded_paths_ask_nothing_and_spoofed_headers_are_dropped(fake: FakeKeyport) -> None:
    app = build_app(fake.url)
    client = app.test_client()
    assert client.get("/health").json == {"identity": False}
    assert fake.asked == []
    answer = client.get("/headers", headers={**AUTH, "X-Keyport-User-Id": "spoofed"})
    assert answer.json is not None
    assert sorted(answer.json) == ["Authorization", "Host", "User-Agent"]
    for path in ["/health/../me", "/orders/./7", "/me\\x"]:
        assert client.get(path, headers=AUTH).status_code == 400, path


def test_copied_headers_and_the_503(fake: FakeKeyport) -> None:
    body = json.dumps({**IDENTITY, "credits": {"remaining": 9}}).encode()
    fake.answer(
        Reply(
            body=body,
            headers=[("ratelimit-remaining", "5"), ("x-keyport-credits-remaining", "9")],
        )
    )
    answer = build_app(fake.url).test_client().get("/me", headers=AUTH)
    assert answer.headers["ratelimit-remaining"] == "5"
    assert answer.headers["x-keyport-credits-remaining"] == "9"
    fake.answer(Reply(status=502))
    answer = build_app(fake.url).test_client().get("/me", headers=AUTH)
    assert (answer.status_code, answer.json) == (
        503,
        {"statusCode": 503, "message": "Service Unavailable", "error": "Service Unavailable"},
    )


def incoming() -> Incoming:
    return Incoming(b"GET", b"/x", [f"Bearer {KEY}".encode()], [], "127.0.0.1", [], None)


def test_one_pool_per_process_and_a_closed_connection_is_replaced(fake: FakeKeyport) -> None:
    gate = Gate(fake.url)
    try:
        for _ in range(5):
            assert isinstance(gate.ask(incoming(), Needs()), Allowed)
        assert len(fake.connections()) == 1
        child = os.fork()
        if child == 0:  # the child of a pre-forking server
            ok = isinstance(gate.ask(incoming(), Needs()), Allowed)
            os._exit(0 if ok else 1)
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert len(fake.connections()) == 2  # the child made its own
        assert isinstance(gate.ask(incoming(), Needs()), Allowed)  # the parent's still works
        assert len(fake.connections()) == 2
        fake.answer(Reply(close=True))
        assert isinstance(gate.ask(incoming(), Needs()), Allowed)
        fake.answer(Reply())
        assert isinstance(gate.ask(incoming(), Needs()), Allowed)
        assert len(fake.connections()) == 3
    finally:
        gate.close()
