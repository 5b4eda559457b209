"""The express lane (`ApiGate.answer_now`, called by the HTTP protocol before it builds an ASGI
cycle) answers exactly what the gate's usual path answers, or hands the request on having
changed nothing: no token taken, nothing reported."""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from keyport.bootstrap import Container
from keyport.domain.audit import Actor
from keyport.domain.clock import FixedClock
from keyport.domain.keys import CHECKSUM_LENGTH, checksum
from keyport.services.observability.request_record import RequestRecord
from keyport.web import errors
from keyport.web.app import create_app
from keyport.web.gate import HSTS, MAX_HEADER_BYTES, ApiGate, ExpressMemo
from tests.conftest import Tenant
from tests.support import asgi
from tests.support.containers import migrated

PEER = "203.0.113.7"
UNKNOWN_USER = "00000000-0000-4000-8000-000000000000"


class Recorder:
    def __init__(self) -> None:
        self.records: list[RequestRecord] = []

    def observe(self, record: RequestRecord) -> None:
        self.records.append(record)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def gate(container: Container, recorder: Recorder) -> ApiGate:
    """The application's gate as `keyport serve` has it, reporting to `recorder`."""
    return create_app(container, run_background=False, observers=[recorder])


def scope_of(
    path: str,
    headers: dict[str, str],
    *,
    method: str = "GET",
    query: bytes = b"",
    raw_path: bytes | None = None,
    peer: str = PEER,
) -> dict[str, Any]:
    """What uvicorn's protocol builds for a request."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": (peer, 50000),
        "scheme": "http",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "state": {},
        "method": method,
        "path": path,
        "raw_path": raw_path if raw_path is not None else path.encode(),
        "query_string": query,
    }


MOVING = {b"x-request-id", b"ratelimit-remaining", b"ratelimit-reset"}  # differ per request


def masked(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [(n, b"<moves>" if n in MOVING else v) for n, v in headers]


def comparable(record: RequestRecord) -> RequestRecord:
    return record._replace(request_id="", latency=0.0, started_at=0.0, verification_latency=None)


def remaining(headers: list[tuple[bytes, bytes]]) -> int:
    return int(dict(headers)[b"ratelimit-remaining"])


def reset(headers: list[tuple[bytes, bytes]]) -> int:
    return int(dict(headers)[b"ratelimit-reset"])


def valid_checksum_stranger(key: str) -> str:
    """A key of the same id whose secret differs and whose checksum is right: only the
    database can say it is unknown."""
    body = key[: -CHECKSUM_LENGTH - 8] + "A" * 8
    return body + checksum(body)


def same_refusal(express: Any, usual: tuple[int, bytes]) -> bool:
    return express is not None and (express[0], express[2]) == usual


def express_cases(tenant: Tenant) -> dict[str, tuple[str, dict[str, str], bytes]]:
    auth = tenant.auth()
    return {
        "me, the owner": ("/v4/user/me", auth, b""),
        "me, a member named": ("/v4/user/me", tenant.auth(tenant.member), b""),
        "authorize": ("/v1/authorize", auth, b""),
        "authorize, scope asked": ("/v1/authorize", auth, b"scope=users:read"),
        "authorize, minimal": ("/v1/authorize", {**auth, "Prefer": "return=minimal"}, b""),
        "authorize, as a member": ("/v1/authorize", tenant.auth(tenant.member), b""),
    }


async def test_the_express_lane_answers_what_the_usual_path_answers(
    gate: ApiGate, recorder: Recorder, tenant: Tenant
) -> None:
    assert gate.answer_now(scope_of("/v4/user/me", tenant.auth())) is None  # caches cold
    assert recorder.records == []  # handed on: nothing reported
    for case, (path, headers, query) in express_cases(tenant).items():
        first = await asgi.call(gate, scope_of(path, headers, query=query))  # fills the caches
        usual = await asgi.call(gate, scope_of(path, headers, query=query))
        express = gate.answer_now(scope_of(path, headers, query=query))
        assert express is not None, case
        status, answer_headers, body = express
        assert (status, body) == (usual[0], usual[2]) == (200, first[2]), case
        # Same headers in the same order, the budget one request further on.
        assert masked(answer_headers) == masked(usual[1]), case
        assert remaining(answer_headers) == remaining(usual[1]) - 1, case
        assert reset(answer_headers) >= reset(usual[1]), case
        *_, from_usual, from_express = recorder.records
        assert comparable(from_express) == comparable(from_usual), case
        assert from_express.verification_latency is not None, case
        assert from_express.request_id != from_usual.request_id, case
        recorder.records.clear()


async def test_https_from_a_trusted_proxy_gets_hsts_in_the_express_lane_too(
    container: Container, clock: FixedClock, recorder: Recorder, tenant: Tenant
) -> None:
    behind_proxy = replace(
        container.settings, trusted_proxies=(ipaddress.ip_network("127.0.0.1/32"),)
    )
    async with migrated(behind_proxy, clock) as proxied:
        gate = create_app(proxied, run_background=False, observers=[recorder])
        headers = {
            **tenant.auth(),
            "X-Forwarded-Proto": "https",
            "X-Forwarded-For": "198.51.100.9",
        }
        usual = await asgi.call(gate, scope_of("/v4/user/me", headers, peer="127.0.0.1"))
        scope = scope_of("/v4/user/me", headers, peer="127.0.0.1")
        express = gate.answer_now(scope)
    assert express is not None and scope["scheme"] == "https"
    assert HSTS in express[1] and HSTS in usual[1]
    assert recorder.records[-1].client_ip == recorder.records[-2].client_ip == "198.51.100.9"


async def warmed_cases(
    gate: ApiGate, container: Container, tenant: Tenant, other_tenant: Tenant
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Requests the express lane hands on, and refusals it gives itself (no I/O, no effect),
    with every cache it reads warm, so that only the case itself decides."""
    auth = tenant.auth()
    restricted = await container.keys.issue_key(
        tenant.company_id,
        name="restricted",
        days=30,
        actor=Actor.cli(),
        scopes=["orders:read"],
        allowed_ips=["10.0.0.0/8"],
    )
    restricted_auth = {"Authorization": f"Bearer {restricted.key}"}
    await asgi.call(gate, scope_of("/v4/user/me", auth))
    await asgi.call(gate, scope_of("/v4/user/me", tenant.auth(tenant.member)))
    await asgi.call(gate, scope_of("/v1/authorize", restricted_auth, peer="10.1.2.3"))
    await asgi.call(gate, scope_of("/v4/user/me", other_tenant.auth()))
    handed_on: dict[str, dict[str, Any]] = {
        "POST": {"path": "/v4/user/me", "headers": auth, "method": "POST"},
        "HEAD": {"path": "/v1/authorize", "headers": auth, "method": "HEAD"},
        "not a fast route": {"path": "/v4/user", "headers": auth},
        "a key never seen (its checksum right)": {
            "path": "/v4/user/me",
            "headers": {"Authorization": "Bearer " + valid_checksum_stranger(tenant.key)},
        },
        "a user header that is not a uuid": {
            "path": "/v4/user/me",
            "headers": {**auth, "x-meetergo-api-user-id": "nope"},
        },
        "an unknown user": {
            "path": "/v4/user/me",
            "headers": {**auth, "x-meetergo-api-user-id": UNKNOWN_USER},
        },
        "a user of another company": {
            "path": "/v4/user/me",
            "headers": {**auth, "x-meetergo-api-user-id": other_tenant.owner.id},
        },
    }
    refused_now: dict[str, dict[str, Any]] = {
        "no key": {"path": "/v4/user/me", "headers": {}},
        "not a bearer": {"path": "/v4/user/me", "headers": {"Authorization": "Basic eDp5"}},
        "not a key's length": {"path": "/v1/authorize", "headers": {"Authorization": "Bearer x"}},
        "a key whose checksum fails": {
            "path": "/v4/user/me",
            "headers": {"Authorization": "Bearer " + tenant.key[:-4] + "AAAA"},
        },
        "a duplicated header": {
            "path": "/v4/user/me",
            "headers": auth,
            "extra": [(b"x-meetergo-api-user-id", tenant.member.id.encode())] * 2,
        },
        "a path not in canonical form": {
            "path": "/v4/user/me",
            "headers": auth,
            "raw_path": b"/v4/user%2Fme",
        },
        "oversized headers": {
            "path": "/v4/user/me",
            "headers": {**auth, "x-big": "a" * 17_000},
        },
        "an IP off the allowlist": {
            "path": "/v1/authorize",
            "headers": restricted_auth,
            "peer": "192.0.2.1",
        },
        "a scope the key lacks": {
            "path": "/v1/authorize",
            "headers": restricted_auth,
            "query": b"scope=users:read",
            "peer": "10.1.2.3",
        },
        "a malformed scope": {
            "path": "/v1/authorize",
            "headers": auth,
            "query": b"scope=nope",
        },
    }
    return handed_on, refused_now


def case_scope(spec: dict[str, Any]) -> dict[str, Any]:
    scope = scope_of(
        spec["path"],
        spec["headers"],
        method=spec.get("method", "GET"),
        query=spec.get("query", b""),
        raw_path=spec.get("raw_path"),
        peer=spec.get("peer", PEER),
    )
    scope["headers"] += spec.get("extra", [])
    return scope


async def test_what_the_express_lane_cannot_answer_it_hands_on_unchanged(
    gate: ApiGate,
    recorder: Recorder,
    container: Container,
    tenant: Tenant,
    other_tenant: Tenant,
) -> None:
    handed_on, _ = await warmed_cases(gate, container, tenant, other_tenant)
    auth = tenant.auth()
    before = remaining((await asgi.call(gate, scope_of("/v4/user/me", auth)))[1])
    recorder.records.clear()
    for case, spec in handed_on.items():
        scope = case_scope(spec)
        assert gate.answer_now(scope) is None, case
        assert "keyport" not in scope and scope["scheme"] == "http", case  # scope untouched
    assert recorder.records == []
    after = remaining((await asgi.call(gate, scope_of("/v4/user/me", auth)))[1])
    assert after == before - 1  # none of the cases took a token


async def test_refusals_that_need_no_io_are_answered_by_the_express_lane_as_by_the_usual_path(
    gate: ApiGate,
    recorder: Recorder,
    container: Container,
    tenant: Tenant,
    other_tenant: Tenant,
) -> None:
    _, refused_now = await warmed_cases(gate, container, tenant, other_tenant)
    auth = tenant.auth()
    before = remaining((await asgi.call(gate, scope_of("/v4/user/me", auth)))[1])
    for case, spec in refused_now.items():
        recorder.records.clear()
        usual = await asgi.call(gate, case_scope(spec))
        express = gate.answer_now(case_scope(spec))
        assert express is not None, case
        status, headers, body = express
        assert status in (400, 401, 403, 431) and (status, body) == (usual[0], usual[2]), case
        assert masked(headers) == masked(usual[1]), case
        from_usual, from_express = recorder.records
        assert comparable(from_express) == comparable(from_usual), case
    after = remaining((await asgi.call(gate, scope_of("/v4/user/me", auth)))[1])
    assert after == before - 1  # a refusal spends nothing


async def test_a_spent_budget_a_deactivated_key_and_an_expired_one_go_the_usual_way(
    gate: ApiGate, recorder: Recorder, container: Container, clock: FixedClock, tenant: Tenant
) -> None:
    auth = tenant.auth()
    limited = await container.keys.issue_key(
        tenant.company_id, name="limited", days=1, actor=Actor.cli(), rate_limit=1
    )
    limited_auth = {"Authorization": f"Bearer {limited.key}"}
    status, _, _ = await asgi.call(gate, scope_of("/v4/user/me", limited_auth))
    assert status == 200
    while gate.answer_now(scope_of("/v4/user/me", limited_auth)) is not None:
        pass  # spends the burst (the fixed clock refills nothing)
    status, headers, _ = await asgi.call(gate, scope_of("/v4/user/me", limited_auth))
    assert (status, dict(headers)[b"ratelimit-remaining"]) == (429, b"0")

    await asgi.call(gate, scope_of("/v4/user/me", auth))
    assert gate.answer_now(scope_of("/v4/user/me", auth)) is not None
    await container.keys.deactivate_key(tenant.company_id, tenant.key_id, actor=Actor.cli())
    # The key's cache entry is evicted: cold again, then refused by the usual path.
    assert gate.answer_now(scope_of("/v4/user/me", auth)) is None
    status, _, body = await asgi.call(gate, scope_of("/v4/user/me", auth))
    assert status == 401
    # Cached, and refused: the express lane answers the same refusal, with the same record.
    assert same_refusal(gate.answer_now(scope_of("/v4/user/me", auth)), (status, body))
    assert comparable(recorder.records[-1]) == comparable(recorder.records[-2])
    assert recorder.records[-1].key_id == tenant.key_id  # a real key refused for its state
    recorder.records.clear()

    # A key that expires while cached: the express lane checks the clock as the usual path does.
    await asgi.call(gate, scope_of("/v4/user/me", limited_auth))
    clock.advance(timedelta(days=2))
    express = gate.answer_now(scope_of("/v4/user/me", limited_auth))
    status, _, body = await asgi.call(gate, scope_of("/v4/user/me", limited_auth))
    assert status == 401 and b"expired" in body.lower()
    assert same_refusal(express, (status, body))


async def test_a_connections_repeated_request_is_prepared_once_and_checked_every_time(
    gate: ApiGate, recorder: Recorder, container: Container, tenant: Tenant
) -> None:
    memo = ExpressMemo()  # one connection's, as the HTTP protocol keeps it
    auth, as_member = tenant.auth(), tenant.auth(tenant.member)
    await asgi.call(gate, scope_of("/v4/user/me", auth))
    await asgi.call(gate, scope_of("/v4/user/me", as_member))
    first = gate.answer_now(scope_of("/v4/user/me", auth), memo)
    prepared = memo.prepared
    again = gate.answer_now(scope_of("/v4/user/me", auth), memo)
    assert first is not None and again is not None and memo.prepared is prepared
    assert again[2] == first[2] and remaining(again[1]) == remaining(first[1]) - 1
    assert comparable(recorder.records[-1]) == comparable(recorder.records[-2])
    assert recorder.records[-1].request_id != recorder.records[-2].request_id

    # Anything else on the same connection is prepared afresh: another acting user, another
    # address (a memo is never shared, but it does not rely on that), another path.
    member = gate.answer_now(scope_of("/v4/user/me", as_member), memo)
    assert member is not None and memo.prepared is not prepared
    assert tenant.member.id.encode() in member[2] and recorder.records[-1].acting_user_id == (
        tenant.member.id
    )
    elsewhere = gate.answer_now(scope_of("/v4/user/me", as_member, peer="198.51.100.1"), memo)
    assert elsewhere is not None and recorder.records[-1].client_ip == "198.51.100.1"
    assert gate.answer_now(scope_of("/v4/user/me", as_member, query=b"x=1"), memo) is not None
    assert gate.answer_now(scope_of("/v4/user", as_member), memo) is None

    # What may change between two identical requests is asked every time.
    assert gate.answer_now(scope_of("/v4/user/me", auth), memo) is not None
    await container.keys.deactivate_key(tenant.company_id, tenant.key_id, actor=Actor.cli())
    assert gate.answer_now(scope_of("/v4/user/me", auth), memo) is None
    status, _, body = await asgi.call(gate, scope_of("/v4/user/me", auth))
    assert status == 401
    refused = gate.answer_now(scope_of("/v4/user/me", auth), memo)  # cached, refused
    assert same_refusal(refused, (status, body))


async def test_a_connection_cycling_through_keys_is_answered_for_each_key_it_sends(
    gate: ApiGate, recorder: Recorder, container: Container, tenant: Tenant, other_tenant: Tenant
) -> None:
    # A client (or a proxy) sending many keys on one connection: each request differs from the
    # one before only in its key, which the memo reads afresh while keeping the rest.
    restricted = await container.keys.issue_key(
        tenant.company_id, name="r", days=30, actor=Actor.cli(), allowed_ips=["10.0.0.0/8"]
    )
    agent = {"User-Agent": "cycler/1.0"}
    own, others = {**tenant.auth(), **agent}, {**other_tenant.auth(), **agent}
    fenced = {"Authorization": f"Bearer {restricted.key}", **agent}
    wrong = {"Authorization": "Bearer " + tenant.key[:-4] + "AAAA", **agent}
    member_own = {**tenant.auth(tenant.member), **agent}
    for headers in (own, others, fenced, member_own):
        await asgi.call(gate, scope_of("/v4/user/me", headers))  # cached
    stranger = {"Authorization": "Bearer " + valid_checksum_stranger(tenant.key), **agent}
    invalid = (401, errors.error_body(401, "Invalid API key"))
    missing = (401, errors.error_body(401, "Missing authorization header"))
    memo = ExpressMemo()
    for _ in range(2):
        answer = gate.answer_now(scope_of("/v4/user/me", own), memo)
        assert answer is not None and tenant.owner.id.encode() in answer[2]
        assert recorder.records[-1].key_id == tenant.key_id
        prepared = memo.prepared
        answer = gate.answer_now(scope_of("/v4/user/me", others), memo)
        assert answer is not None and other_tenant.owner.id.encode() in answer[2]
        assert (recorder.records[-1].key_id, recorder.records[-1].acting_user_id) == (
            other_tenant.key_id,
            other_tenant.owner.id,
        )
        assert memo.prepared is not prepared and memo.prepared is not None
        assert memo.prepared.headers.user_agent == "cycler/1.0"
        # Its allowlist refuses this address, though the key before it passed.
        refused = gate.answer_now(scope_of("/v4/user/me", fenced), memo)
        assert refused is not None and refused[0] == 403
        # A key whose checksum fails, and no key at all, are refused at once; a key never
        # seen whose checksum is right goes the usual way (only the database knows it).
        assert same_refusal(gate.answer_now(scope_of("/v4/user/me", wrong), memo), invalid)
        assert same_refusal(gate.answer_now(scope_of("/v4/user/me", agent), memo), missing)
        assert gate.answer_now(scope_of("/v4/user/me", stranger), memo) is None
    reported = len(recorder.records)
    # The member named in the user header acts with his company's key; with another company's,
    # sent next on the connection, he is refused.
    member_other = {**other_tenant.auth(tenant.member), **agent}
    assert gate.answer_now(scope_of("/v4/user/me", member_own), memo) is not None
    assert gate.answer_now(scope_of("/v4/user/me", member_other), memo) is None
    assert len(recorder.records) == reported + 1
    status, _, _ = await asgi.call(gate, scope_of("/v4/user/me", member_other))
    assert status == 403


async def test_a_key_sent_again_with_headers_grown_too_large_is_refused_with_431(
    gate: ApiGate, tenant: Tenant, other_tenant: Tenant
) -> None:
    # The same headers but the key: its value padded (`Bearer` and spaces, as allowed) past
    # the limit the memo's first request stayed under.
    auth = f"Bearer {tenant.key}"
    filler = "x" * (MAX_HEADER_BYTES - len("authorization") - len(auth) - len("x-filler") - 10)
    first = {"Authorization": auth, "X-Filler": filler}
    padded = {"Authorization": "Bearer" + " " * 20 + other_tenant.key, "X-Filler": filler}
    await asgi.call(gate, scope_of("/v4/user/me", first))
    await asgi.call(gate, scope_of("/v4/user/me", {"Authorization": f"Bearer {other_tenant.key}"}))
    memo = ExpressMemo()
    assert gate.answer_now(scope_of("/v4/user/me", first), memo) is not None
    express = gate.answer_now(scope_of("/v4/user/me", padded), memo)
    status, _, body = await asgi.call(gate, scope_of("/v4/user/me", padded))
    assert express is not None and (express[0], express[2]) == (status, body)
    assert status == 431


async def test_an_address_refused_for_failures_is_refused_on_a_prepared_connection(
    gate: ApiGate, tenant: Tenant
) -> None:
    memo = ExpressMemo()
    auth = tenant.auth()
    await asgi.call(gate, scope_of("/v4/user/me", auth))
    assert gate.answer_now(scope_of("/v4/user/me", auth), memo) is not None
    wrong = {"Authorization": "Bearer " + tenant.key[:-4] + "AAAA"}
    for _ in range(1000):  # far beyond any burst: stops at the first 429
        status, _, _ = await asgi.call(gate, scope_of("/v4/user/me", wrong))
        if status == 429:
            break
    assert status == 429
    express = gate.answer_now(scope_of("/v4/user/me", auth), memo)
    status, _, body = await asgi.call(gate, scope_of("/v4/user/me", auth))
    assert express is not None and (express[0], express[2]) == (status, body)
    assert status == 429


async def test_a_key_whose_allowlist_refuses_the_address_is_refused_every_time(
    gate: ApiGate, container: Container, tenant: Tenant
) -> None:
    restricted = await container.keys.issue_key(
        tenant.company_id, name="r", days=30, actor=Actor.cli(), allowed_ips=["10.0.0.0/8"]
    )
    auth = {"Authorization": f"Bearer {restricted.key}"}
    memo = ExpressMemo()
    await asgi.call(gate, scope_of("/v4/user/me", auth, peer="10.1.2.3"))
    for _ in range(2):
        assert gate.answer_now(scope_of("/v4/user/me", auth, peer="10.1.2.3"), memo)
        refused = gate.answer_now(scope_of("/v4/user/me", auth, peer="192.0.2.1"), memo)
        assert refused is not None and refused[0] == 403


async def test_an_express_lane_failure_is_answered_by_the_usual_path_logged_and_counted(
    container: Container,
    recorder: Recorder,
    tenant: Tenant,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    gate = create_app(container, run_background=False, observers=[recorder])
    auth = tenant.auth()
    expected = await asgi.call(gate, scope_of("/v4/user/me", auth))  # caches warm

    def broken(*_: Any) -> None:
        raise RuntimeError("a bug in the express lane")

    monkeypatch.setattr(container.authenticator, "verify_now", broken)
    recorder.records.clear()
    scope = scope_of("/v4/user/me", auth)
    with caplog.at_level("ERROR", logger="keyport.web.gate.asgi_driver"):
        assert gate.answer_now(scope, ExpressMemo()) is None  # handed on, not a 400
    failure = next(r for r in caplog.records if "express lane failed" in r.getMessage())
    assert failure.exc_info is not None and "a bug in the express lane" in caplog.text
    assert recorder.records == []
    status, _, body = await asgi.call(gate, scope)  # the usual path answers it
    assert (status, body) == (200, expected[2])
    assert [r.status for r in recorder.records] == [200]
    metrics = container.observability.metrics.render()
    assert "keyport_express_lane_errors_total 1.0" in metrics
