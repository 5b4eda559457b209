"""GET /metrics: Prometheus text whose counters move with the requests made."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import httpx

from keyport.bootstrap import Container
from keyport.domain.audit import Actor
from keyport.domain.clock import FixedClock
from keyport.domain.keys import generate_key
from tests.conftest import Tenant

_SAMPLE = re.compile(r"^([a-z_]+)(?:\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'([a-z_]+)="((?:[^"\\]|\\.)*)"')
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    samples: Samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        name, labels, value = match.groups()
        samples[(name, frozenset(_LABEL.findall(labels or "")))] = float(value)
    return samples


def sample(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def scrape(client: httpx.AsyncClient) -> Samples:
    answer = await client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return parse(answer.text)


async def test_request_counters_move_by_route_and_status(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    before = await scrape(client)
    for _ in range(3):
        await client.get("/v4/user/me", headers=tenant.auth())
    await client.get(f"/v4/user/{uuid.uuid4()}", headers=tenant.auth(tenant.owner))
    after = await scrape(client)

    def moved(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    requests = "keyport_http_requests_total"
    assert moved(requests, method="GET", route="/v4/user/me", status="200") == 3
    assert moved(requests, method="GET", route="/v4/user/{user_id}", status="404") == 1
    assert moved(requests, method="GET", route="/metrics", status="200") == 1  # the first scrape
    durations = "keyport_http_request_duration_seconds_count"
    assert moved(durations, route="/v4/user/me") == 3
    assert moved("keyport_api_auth_total", outcome="success") == 4
    assert moved("keyport_api_key_verification_seconds_count") == 4


async def test_authentication_outcomes_are_counted_by_reason(
    client: httpx.AsyncClient, container: Container, tenant: Tenant, clock: FixedClock
) -> None:
    before = await scrape(client)
    await client.get("/v4/user/me")
    await client.get(
        "/v4/user/me", headers={"Authorization": f"Bearer {generate_key(uuid.uuid4())}"}
    )
    await client.get("/v4/user", headers=tenant.auth())
    await client.get("/v4/user/me", headers={**tenant.auth(), "x-meetergo-api-user-id": "x"})
    stranger = {**tenant.auth(), "x-meetergo-api-user-id": str(uuid.uuid4())}
    await client.get("/v4/user/me", headers=stranger)
    await container.keys.deactivate_key(tenant.company_id, tenant.key_id, Actor.cli())
    await client.get("/v4/user/me", headers=tenant.auth())
    await container.keys.activate_key(tenant.company_id, tenant.key_id, Actor.cli())
    clock.advance(timedelta(days=31))
    await client.get("/v4/user/me", headers=tenant.auth())
    after = await scrape(client)

    outcomes = {
        outcome: sample(after, "keyport_api_auth_total", outcome=outcome)
        - sample(before, "keyport_api_auth_total", outcome=outcome)
        for outcome in [
            "success",
            "missing",
            "invalid",
            "expired",
            "deactivated",
            "missing_user_header",
            "invalid_user_header",
            "invalid_user",
        ]
    }
    assert outcomes == {
        "success": 0,
        "missing": 1,
        "invalid": 1,
        "expired": 1,
        "deactivated": 1,
        "missing_user_header": 1,
        "invalid_user_header": 1,
        "invalid_user": 1,
    }
    refused = "keyport_http_requests_total"
    assert sample(after, refused, method="GET", route="unrouted", status="401") >= 4


async def test_principal_cache_hits_and_misses_are_exposed(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    before = await scrape(client)
    for _ in range(5):
        await client.get("/v4/user/me", headers=tenant.auth())
    after = await scrape(client)

    hits = "keyport_cache_hits_total"
    misses = "keyport_cache_misses_total"
    assert sample(after, misses, cache="principal") - sample(before, misses, cache="principal") == 1
    assert sample(after, hits, cache="principal") - sample(before, hits, cache="principal") == 4


async def test_usage_flush_lag_grows_with_unwritten_usage_and_drops_to_zero_after_a_flush(
    client: httpx.AsyncClient, container: Container, tenant: Tenant, clock: FixedClock
) -> None:
    await client.get("/v4/user/me", headers=tenant.auth())
    clock.advance(timedelta(seconds=7))
    lag = sample(await scrape(client), "keyport_usage_flush_lag_seconds")
    assert 7 <= lag < 8
    flusher = container.observability.flusher
    assert flusher is not None and await flusher.flush()
    samples = await scrape(client)
    assert sample(samples, "keyport_usage_flush_lag_seconds") == 0
    assert sample(samples, "keyport_usage_last_flush_timestamp_seconds") == clock.time()
    assert sample(samples, "keyport_usage_written_requests_total") == 1


async def test_metric_labels_never_hold_a_raw_path_or_a_key_id(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    user_id = str(uuid.uuid4())
    await client.get(f"/v4/user/{user_id}", headers=tenant.auth(tenant.owner))
    await client.get(f"/nowhere/{user_id}")
    await client.request("BREW", "/v4/user/me", headers=tenant.auth())
    text = (await client.get("/metrics")).text

    assert user_id not in text
    assert tenant.key_id not in text
    assert tenant.key.split(":")[2] not in text
    assert "BREW" not in text
    assert 'method="OTHER"' in text
