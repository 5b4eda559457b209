"""The example apps of docs/python/ (clients/python/examples/), installed as an app's developer
installs keyport-client and run on their real servers — FastAPI on uvicorn, Django on gunicorn
(sync stack) and on uvicorn (async stack), Flask on gunicorn with two pre-forked workers —
each guarded by a real `keyport serve`. Every answer a client gets here is Keyport's own or the
app's; each app is started once (with a twin whose Keyport is down), for all its tests."""

from __future__ import annotations

import http.client
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.guarded.conftest import Served
from tests.support.client_venv import CREATE_PATH, SERVERS, AppProcess, ClientVenv
from tests.support.fake_keyport import closed_address
from tests.support.seed import change_key

USER_HEADER = "x-meetergo-api-user-id"
PHRASES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 429: "Too Many Requests"}


@dataclass(frozen=True)
class Guarded:
    kind: str
    app: AppProcess
    down: AppProcess  # the same app, its Keyport unreachable
    keyport: Served

    def get(self, path: str, key: str | None = None, **headers: str) -> httpx.Response:
        return self.send("GET", path, key, **headers)

    def send(
        self, method: str, path: str, key: str | None = None, **headers: str
    ) -> httpx.Response:
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        return httpx.request(method, self.app.base_url + path, headers=headers, timeout=10)

    def key(self, name: str) -> dict[str, Any]:
        """This app's own key of that name (conftest.KEYS)."""
        return self.keyport.keys[self.kind][name]


@pytest.fixture(scope="module", params=list(SERVERS))
def guarded(
    request: pytest.FixtureRequest,
    client_venv: ClientVenv,
    keyport: Served,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Guarded]:
    kind: str = request.param
    folder: Path = tmp_path_factory.mktemp(kind)
    app = AppProcess(
        client_venv, SERVERS[kind], {"KEYPORT_URL": keyport.server.base_url}, folder / "app.log"
    )
    down = AppProcess(
        client_venv, SERVERS[kind], {"KEYPORT_URL": closed_address()}, folder / "down.log"
    )
    try:
        app.launch(), down.launch()
        app.wait_ready(), down.wait_ready()
        yield Guarded(kind, app, down, keyport)
    finally:
        app.stop()
        down.stop()


def refusal(status: int, message: str) -> dict[str, Any]:
    return {"statusCode": status, "message": message, "error": PHRASES[status]}


def assert_refused(answer: httpx.Response, status: int, message: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.json() == refusal(status, message)
    assert answer.headers["content-type"].startswith("application/json")
    if status == 401:
        assert answer.headers["www-authenticate"] == "Bearer"


def keyports_answer(guarded: Guarded, key: str, **headers: str) -> dict[str, Any]:
    headers["Authorization"] = f"Bearer {key}"
    answer = httpx.get(guarded.keyport.server.base_url + "/v1/authorize", headers=headers)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def test_the_identity_reaches_the_view(guarded: Guarded) -> None:
    key = guarded.key("full")
    answer = guarded.get("/me", key["key"])
    assert answer.status_code == 200, answer.text
    seen = answer.json()
    expected = keyports_answer(guarded, key["key"])
    assert seen["expiresAt"].replace("+00:00", "Z").startswith(expected["expiresAt"][:19])
    del seen["expiresAt"], expected["expiresAt"]
    assert seen == {**expected, "credential": "api_key"}
    assert (seen["keyId"], seen["userId"], seen["userRole"], seen["scopes"]) == (
        key["id"],
        guarded.keyport.owner_id,
        "owner",
        ["*"],
    )


def test_the_user_header_selects_the_acting_user(guarded: Guarded) -> None:
    key = guarded.key("full")["key"]
    member = guarded.get("/me", key, **{USER_HEADER: guarded.keyport.member_id}).json()
    assert (member["userId"], member["userRole"]) == (guarded.keyport.member_id, "member")
    assert_refused(
        guarded.get("/me", key, **{USER_HEADER: "not-a-uuid"}),
        400,
        "Invalid user: x-meetergo-api-user-id must be a UUID",
    )
    assert_refused(
        guarded.get("/me", key, **{USER_HEADER: "00000000-0000-4000-8000-000000000000"}),
        403,
        "Invalid user: no such user in this company",
    )


def test_missing_and_invalid_keys_get_keyports_exact_answers(guarded: Guarded) -> None:
    assert_refused(guarded.get("/me"), 401, "Missing authorization header")
    assert_refused(guarded.get("/orders", "nope"), 401, "Invalid API key")
    fake = "ak_live:00000000-0000-4000-8000-000000000000:" + "a" * 50
    assert_refused(guarded.get("/me", fake), 401, "Invalid API key")


def test_scopes_by_path_and_by_route_on_one_question(guarded: Guarded) -> None:
    create = CREATE_PATH[guarded.kind]
    reader = guarded.key("reader")["key"]
    assert guarded.get("/orders", reader).status_code == 200
    assert guarded.get("/me", reader).status_code == 200  # no scope needed there
    assert_refused(
        guarded.send("POST", create, reader), 403, "Insufficient scope: requires orders:write"
    )
    writer = guarded.key("writer")["key"]
    answer = guarded.send("POST", create, writer)
    assert answer.status_code == 201, answer.text
    assert answer.json() == {"createdBy": guarded.keyport.owner_id}
    stranger = guarded.key("stranger")["key"]
    assert_refused(
        guarded.get("/orders", stranger), 403, "Insufficient scope: requires orders:read"
    )


def test_a_rate_limited_key_gets_keyports_429_and_one_token_per_request(
    guarded: Guarded,
) -> None:
    key = guarded.key("limited")["key"]  # bursts to 2: a second question would be refused
    first, second = guarded.get("/me", key), guarded.get("/me", key)
    assert (first.status_code, second.status_code) == (200, 200)
    assert (first.headers["ratelimit-limit"], first.headers["ratelimit-remaining"]) == ("2", "1")
    assert second.headers["ratelimit-remaining"] == "0"
    limited = guarded.get("/me", key)
    assert_refused(limited, 429, "Too Many Requests")
    assert limited.headers["retry-after"] == "60"
    assert (limited.headers["ratelimit-limit"], limited.headers["ratelimit-remaining"]) == (
        "2",
        "0",
    )
    assert "ratelimit-reset" in limited.headers


def test_excluded_paths_pass_without_a_key(guarded: Guarded) -> None:
    answer = guarded.get("/health")
    assert (answer.status_code, answer.json()) == (200, {"status": "ok"})


def test_dot_segments_are_refused_before_anything(guarded: Guarded) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", guarded.app.port, timeout=10)
    try:
        connection.request("GET", "/health/../me")
        raw = connection.getresponse()
        status, body = raw.status, raw.read()
    finally:
        connection.close()
    assert (status, body) == (
        400,
        b'{"statusCode":400,"message":"Invalid request path","error":"Bad Request"}',
    )


def test_a_client_sent_forwarded_for_is_not_the_address_checked(guarded: Guarded) -> None:
    inside = guarded.key("inside")["key"]
    assert guarded.get("/me", inside).status_code == 200
    elsewhere = guarded.key("elsewhere")["key"]
    assert_refused(
        guarded.get("/me", elsewhere, **{"X-Forwarded-For": "192.0.2.10"}),
        403,
        "API key is not allowed from this IP address",
    )


def test_nothing_is_cached_a_deactivated_key_stops_at_once(guarded: Guarded) -> None:
    key = guarded.key("doomed")
    assert guarded.get("/me", key["key"]).status_code == 200
    change_key(guarded.keyport.server.env, "deactivate", key["id"])
    started = time.monotonic()
    while (answer := guarded.get("/me", key["key"])).status_code == 200:
        assert time.monotonic() - started < 1.5, "still admitted"
        time.sleep(0.05)
    assert_refused(answer, 401, "API key is deactivated")


def test_keyport_down_is_503_never_the_app(guarded: Guarded) -> None:
    key = guarded.key("spare")["key"]
    answer = httpx.get(
        guarded.down.base_url + "/me", headers={"Authorization": f"Bearer {key}"}, timeout=10
    )
    assert answer.status_code == 503
    assert answer.json() == {
        "statusCode": 503,
        "message": "Service Unavailable",
        "error": "Service Unavailable",
    }
    assert httpx.get(guarded.down.base_url + "/health").status_code == 200
