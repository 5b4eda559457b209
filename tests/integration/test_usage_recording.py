"""Usage recording end to end in one process: requests → memory → flush → tables → reports.

On SQLite and PostgreSQL. Nothing is written while requests run; `flush()` stands in for the
background task a serving process runs every few seconds.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import msgspec
from sqlalchemy import Table, func, select

from keyport.bootstrap import Container
from keyport.db.tables import api_keys, key_recent_batches, key_sightings, key_usage_minutes
from keyport.db.usage_queries import SqlUsageReader
from keyport.db.usage_store import SqlUsageStore
from keyport.domain.anomalies import AlertKind
from keyport.domain.audit import Actor
from keyport.domain.clock import FixedClock
from keyport.domain.usage import IP, MinuteCount, RecentEntry, RecentRequests, Sighting
from keyport.services.observability.usage_recorder import RING_SIZE, UsageBatch
from keyport.web.app import create_app
from tests.conftest import Tenant
from tests.support.usage import usage_totals

UTC_ZONE = ZoneInfo("UTC")


async def flush(container: Container) -> None:
    flusher = container.observability.flusher
    assert flusher is not None
    assert await flusher.flush()


async def minute_totals(container: Container, key_id: str) -> tuple[int, int, int]:
    async with container.engine.connect() as connection:
        return await usage_totals(connection, key_id)


async def table_count(container: Container, table: Table, key_id: str) -> int:
    async with container.engine.connect() as connection:
        counted = await connection.scalar(
            select(func.count()).select_from(table).where(table.c.key_id == key_id)
        )
        return counted or 0


async def ring_requests(container: Container, key_id: str) -> int:
    """Requests in the key's ring of recent requests, in all its rows."""
    async with container.engine.connect() as connection:
        summed = await connection.scalar(
            select(func.coalesce(func.sum(key_recent_batches.c.requests), 0)).where(
                key_recent_batches.c.key_id == key_id
            )
        )
        return int(summed or 0)


async def make_mixed_requests(client: httpx.AsyncClient, tenant: Tenant) -> None:
    """7 successes, 5 client errors (400, 403, 404, 404, 400) with one key."""
    for _ in range(6):
        assert (await client.get("/v4/user/me", headers=tenant.auth())).status_code == 200
    assert (await client.get("/v4/user", headers=tenant.auth(tenant.owner))).status_code == 200
    assert (await client.get("/v4/user", headers=tenant.auth())).status_code == 400
    bad_user = {**tenant.auth(), "x-meetergo-api-user-id": str(uuid.uuid4())}
    assert (await client.get("/v4/user/me", headers=bad_user)).status_code == 403
    unknown = f"/v4/user/{uuid.uuid4()}"
    assert (await client.get(unknown, headers=tenant.auth(tenant.owner))).status_code == 404
    assert (await client.get("/v4/nothing", headers=tenant.auth())).status_code == 404
    not_uuid = {**tenant.auth(), "x-meetergo-api-user-id": "nope"}
    assert (await client.get("/v4/user/me", headers=not_uuid)).status_code == 400


async def test_n_requests_with_a_key_are_counted_exactly_by_status_class_after_a_flush(
    client: httpx.AsyncClient, container: Container, tenant: Tenant, other_tenant: Tenant
) -> None:
    await make_mixed_requests(client, tenant)
    await client.get("/v4/user/me", headers=other_tenant.auth())
    await client.get("/v4/user/me")  # no key: counted for no key
    assert await minute_totals(container, tenant.key_id) == (0, 0, 0)  # nothing written yet

    await flush(container)

    assert await minute_totals(container, tenant.key_id) == (7, 5, 0)
    assert await minute_totals(container, other_tenant.key_id) == (1, 0, 0)
    assert await ring_requests(container, tenant.key_id) == 12
    key = await container.keys.get_key(tenant.company_id, tenant.key_id)
    usage = await container.observability.usage.key_usage(key, UTC_ZONE)
    assert (usage.total.total, usage.total.success, usage.total.client_error) == (12, 7, 5)
    assert sum(h.total for h in usage.hours) == 12
    assert len(usage.hours) == 14 * 24 and len(usage.days) == 14


async def test_counts_add_up_across_flushes_and_minutes(
    client: httpx.AsyncClient, container: Container, tenant: Tenant, clock: FixedClock
) -> None:
    await make_mixed_requests(client, tenant)
    await flush(container)
    clock.advance(timedelta(minutes=3))
    await make_mixed_requests(client, tenant)
    await flush(container)

    assert await minute_totals(container, tenant.key_id) == (14, 10, 0)
    assert await table_count(container, key_usage_minutes, tenant.key_id) == 2


async def test_the_recent_requests_of_a_key_are_the_newest_hundred(
    client: httpx.AsyncClient, container: Container, tenant: Tenant, clock: FixedClock
) -> None:
    for _ in range(RING_SIZE - 10):
        await client.get("/v4/user/me", headers=tenant.auth())
    await flush(container)
    clock.advance(timedelta(seconds=1))
    for _ in range(20):
        await client.get("/v4/user/unknown-user", headers=tenant.auth(tenant.owner))
    await flush(container)

    # Trimmed to RING_SIZE once this process has written RING_SIZE more (db/ring_trimming.py).
    assert await ring_requests(container, tenant.key_id) == RING_SIZE + 10
    key = await container.keys.get_key(tenant.company_id, tenant.key_id)
    usage = await container.observability.usage.key_usage(key, UTC_ZONE)
    newest = usage.recent[0]
    assert (newest.method, newest.path, newest.route, newest.status) == (
        "GET",
        "/v4/user/unknown-user",
        "/v4/user/{user_id}",
        404,
    )
    assert (newest.client_ip, newest.acting_user_id) == ("203.0.113.7", tenant.owner.id)
    assert newest.at.tzinfo is not None
    assert abs((newest.at - clock.now()).total_seconds()) < 1  # stored as UTC, read back as UTC
    assert newest.user_agent is not None and newest.user_agent.startswith("python-httpx/")
    assert await minute_totals(container, tenant.key_id) == (RING_SIZE - 10, 20, 0)


async def ring_rows(container: Container, key_id: str) -> list[tuple[int, int]]:
    """(row id, requests in it) of the key's ring, oldest row first."""
    async with container.engine.connect() as connection:
        rows = await connection.execute(
            select(key_recent_batches.c.id, key_recent_batches.c.requests)
            .where(key_recent_batches.c.key_id == key_id)
            .order_by(key_recent_batches.c.id)
        )
        return [(row_id, requests) for row_id, requests in rows]


def entry(request_id: str, at_us: int) -> RecentEntry:
    return (at_us, request_id, "GET", "/v4/user/me", None, 200, 1.0, None, None, None, None)


def ring_of(key_id: str, entries: list[RecentEntry]) -> RecentRequests:
    """A key's requests of one flush, encoded as the recorder hands them over."""
    return RecentRequests(key_id, len(entries), msgspec.json.encode(entries))


async def test_one_row_per_key_and_flush_rings_trimmed_at_first_write_and_every_ring_size(
    client: httpx.AsyncClient, container: Container, tenant: Tenant, clock: FixedClock
) -> None:
    actor = Actor("cli")
    keys = [
        await container.keys.issue_key(tenant.company_id, name=f"k{i}", days=30, actor=actor)
        for i in range(3)
    ]
    ids = [issued.record.id for issued in keys]
    auth = [{"Authorization": f"Bearer {issued.key}"} for issued in keys]

    async def requests(key: int, count: int) -> None:
        for _ in range(count):
            await client.get("/v4/user/me", headers=auth[key])

    async def ring_sizes() -> list[int]:
        return [await ring_requests(container, key_id) for key_id in ids]

    await requests(0, RING_SIZE + 5)  # over the ring in one flush: the oldest five go
    await requests(1, 7)
    await flush(container)
    assert [[n for _, n in await ring_rows(container, k)] for k in ids] == [[RING_SIZE], [7], []]
    [(first_of_second, _)] = await ring_rows(container, ids[1])

    await requests(0, RING_SIZE - 3)  # fewer than RING_SIZE since their trims: kept a while
    await requests(1, RING_SIZE - 3)
    await requests(2, 1)
    await flush(container)
    assert await ring_sizes() == [2 * RING_SIZE - 3, RING_SIZE + 4, 1]

    await requests(0, 3)  # RING_SIZE since the first key's trim: trimmed, the second is not
    await flush(container)
    assert [n for _, n in await ring_rows(container, ids[0])] == [RING_SIZE - 3, 3]
    assert await ring_sizes() == [RING_SIZE, RING_SIZE + 4, 1]

    # A new process (here: a new store) trims every ring at its first write to it: a row goes
    # once newer rows hold RING_SIZE requests, a row holding some of them stays whole.
    store = SqlUsageStore(container.engine, container.settings.database)
    now_us = int(clock.now().timestamp() * 1_000_000)
    later = ring_of(ids[1], [entry(f"r{n}", now_us + n) for n in range(5)])
    try:
        await store.write(UsageBatch(recent=[later]))
    finally:
        await store.close()
    second = await ring_rows(container, ids[1])
    assert [n for _, n in second] == [RING_SIZE - 3, 5]  # the row of 7 went: 102 newer
    assert second[0][0] > first_of_second
    assert await ring_sizes() == [RING_SIZE, RING_SIZE + 2, 1]
    recent = await SqlUsageReader(container.engine).recent(ids[1], 2 * RING_SIZE)
    assert [r.request_id for r in recent[:5]] == ["r4", "r3", "r2", "r1", "r0"]
    assert len(recent) == RING_SIZE + 2
    assert [r.request_id for r in recent[:5]] == [
        r.request_id for r in await SqlUsageReader(container.engine).recent(ids[1], 5)
    ]


async def test_a_flush_of_more_rows_than_one_statement_takes_writes_them_all(
    container: Container, tenant: Tenant, clock: FixedClock
) -> None:
    rows = 2_501  # on PostgreSQL three statements of each kind (usage_store._PG_CHUNK = 1000)
    key_id, now = tenant.key_id, clock.now()
    now_us = int(now.timestamp() * 1_000_000)
    first_minute = int(now.timestamp() // 60) - rows
    batch = UsageBatch(
        counts=[MinuteCount(key_id, first_minute + i, 1, 0, 0) for i in range(rows)],
        recent=[ring_of(key_id, [entry(f"r{i}", now_us + i)]) for i in range(rows)],
        sightings=[
            Sighting(key_id, IP, f"10.0.{i // 256}.{i % 256}", now, now, 1) for i in range(rows)
        ],
    )
    store = SqlUsageStore(container.engine, container.settings.database)
    try:
        await store.write(batch)
    finally:
        await store.close()

    assert await table_count(container, key_usage_minutes, key_id) == rows
    assert await minute_totals(container, key_id) == (rows, 0, 0)
    assert await table_count(container, key_sightings, key_id) == rows
    assert len(await ring_rows(container, key_id)) == RING_SIZE  # trimmed at its first write
    recent = await SqlUsageReader(container.engine).recent(key_id, 2 * RING_SIZE)
    assert [r.request_id for r in recent] == [f"r{i}" for i in range(rows - 1, rows - 101, -1)]
    assert recent[0].at == datetime.fromtimestamp(0, UTC) + timedelta(
        microseconds=now_us + rows - 1
    )


async def test_last_used_is_written_at_most_once_a_minute_and_only_forward(
    client: httpx.AsyncClient, container: Container, tenant: Tenant, clock: FixedClock
) -> None:
    first_seen = clock.now()
    await client.get("/v4/user/me", headers=tenant.auth())
    await flush(container)
    key = await container.keys.get_key(tenant.company_id, tenant.key_id)
    assert key.last_used_ip == "203.0.113.7"
    assert key.last_used_at is not None and abs(key.last_used_at - first_seen) < timedelta(
        seconds=1
    )

    clock.advance(timedelta(seconds=30))
    await client.get("/v4/user/me", headers=tenant.auth())
    await flush(container)  # within the minute: not written
    assert (await container.keys.get_key(tenant.company_id, tenant.key_id)).last_used_at == (
        key.last_used_at
    )

    clock.advance(timedelta(seconds=31))
    await flush(container)  # a minute after the last write: the newest use is written
    moved = await container.keys.get_key(tenant.company_id, tenant.key_id)
    assert moved.last_used_at is not None
    assert abs(moved.last_used_at - (first_seen + timedelta(seconds=30))) < timedelta(seconds=1)

    await set_last_used(container, tenant.key_id, first_seen + timedelta(days=1))
    clock.advance(timedelta(minutes=2))
    await client.get("/v4/user/me", headers=tenant.auth())
    await flush(container)  # another process wrote a newer value: ours is older, not written
    kept = await container.keys.get_key(tenant.company_id, tenant.key_id)
    assert kept.last_used_at == first_seen + timedelta(days=1)


async def set_last_used(container: Container, key_id: str, when: datetime) -> None:
    async with container.engine.begin() as connection:
        await connection.execute(
            api_keys.update().where(api_keys.c.id == key_id).values(last_used_at=when)
        )


async def test_attempts_with_a_deactivated_key_are_recorded_as_refused_but_do_not_count_as_use(
    client: httpx.AsyncClient, container: Container, tenant: Tenant
) -> None:
    await container.keys.deactivate_key(tenant.company_id, tenant.key_id, Actor.cli())
    for _ in range(3):
        assert (await client.get("/v4/user/me", headers=tenant.auth())).status_code == 401
    await flush(container)

    assert await minute_totals(container, tenant.key_id) == (0, 3, 0)
    key = await container.keys.get_key(tenant.company_id, tenant.key_id)
    assert key.last_used_at is None
    usage = await container.observability.usage.key_usage(key, UTC_ZONE)
    assert [r.refusal for r in usage.recent] == ["deactivated"] * 3
    assert usage.last_request is None


async def test_clients_seen_are_kept_per_key_with_first_and_last_sight(
    container: Container, tenant: Tenant, clock: FixedClock
) -> None:
    start = clock.now()
    async with client_from(container, "198.51.100.1") as first:
        await first.get("/v4/user/me", headers={**tenant.auth(), "User-Agent": "billing/1.0"})
    await flush(container)
    clock.advance(timedelta(hours=2))
    async with client_from(container, "198.51.100.1") as again:
        await again.get("/v4/user/me", headers={**tenant.auth(), "User-Agent": "billing/1.0"})
    await flush(container)

    async with container.engine.connect() as connection:
        rows = (
            await connection.execute(
                select(key_sightings).where(key_sightings.c.key_id == tenant.key_id)
            )
        ).all()
    seen = {(r.kind, r.value): (r.first_seen_at, r.last_seen_at, r.requests) for r in rows}
    assert set(seen) == {("ip", "198.51.100.1"), ("agent", "billing/1.0")}
    first_seen, last_seen, requests = seen[("ip", "198.51.100.1")]
    assert requests == 2
    assert abs(first_seen - start) < timedelta(seconds=1)
    assert abs(last_seen - (start + timedelta(hours=2))) < timedelta(seconds=1)


def client_from(container: Container, ip: str) -> httpx.AsyncClient:
    app = create_app(container, run_background=False)
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://keyport.test")


async def test_a_request_from_a_new_ip_is_reported_as_unusual(
    container: Container, tenant: Tenant, clock: FixedClock
) -> None:
    async with client_from(container, "198.51.100.1") as usual:
        await usual.get("/v4/user/me", headers={**tenant.auth(), "User-Agent": "billing/1.0"})
    await flush(container)
    clock.advance(timedelta(days=3))
    async with client_from(container, "192.0.2.66") as stranger:
        await stranger.get("/v4/user/me", headers={**tenant.auth(), "User-Agent": "billing/1.0"})
    await flush(container)

    key = await container.keys.get_key(tenant.company_id, tenant.key_id)
    usage = await container.observability.usage.key_usage(key, UTC_ZONE)
    assert [(a.kind, a.subject) for a in usage.alerts] == [(AlertKind.NEW_IP, "192.0.2.66")]
    assert usage.addresses.total == 2
    assert [s.value for s in usage.addresses.latest] == ["192.0.2.66", "198.51.100.1"]


async def test_a_burst_of_failures_is_reported_as_unusual(
    client: httpx.AsyncClient, container: Container, tenant: Tenant
) -> None:
    for _ in range(12):
        await client.get("/v4/user", headers=tenant.auth())  # 400: the user header is missing
    await client.get("/v4/user/me", headers=tenant.auth())
    await flush(container)

    key = await container.keys.get_key(tenant.company_id, tenant.key_id)
    usage = await container.observability.usage.key_usage(key, UTC_ZONE)
    assert [(a.kind, a.subject) for a in usage.alerts] == [(AlertKind.FAILURES, "12 requests")]


async def test_nothing_is_recorded_when_usage_recording_is_off(
    container: Container, tenant: Tenant
) -> None:
    from dataclasses import replace

    from keyport.bootstrap import build_container

    settings = replace(container.settings, usage_recording=False)
    quiet = build_container(settings, clock=container.clock)
    try:
        assert quiet.observability.recorder is None and quiet.observability.flusher is None
        app = create_app(quiet, run_background=False)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://k.test") as client:
            assert (await client.get("/v4/user/me", headers=tenant.auth())).status_code == 200
    finally:
        await quiet.close()
    assert await minute_totals(container, tenant.key_id) == (0, 0, 0)
