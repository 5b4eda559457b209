"""Counting usage in memory and handing it to the store in batches
(services.observability.usage_*)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import msgspec
import pytest

from keyport.domain.auth_outcomes import AuthOutcome
from keyport.domain.usage import MinuteCount, RecentEntry, RecentRequest, RecentRequests
from keyport.services.observability.request_record import RequestRecord
from keyport.services.observability.usage_flush import UsageFlusher
from keyport.services.observability.usage_recorder import (
    ABSORB_EVERY,
    DRAIN_STEP,
    RING_SIZE,
    UsageBatch,
    UsageRecorder,
)


def recent_requests(ring: RecentRequests) -> list[RecentRequest]:
    """A drained ring's requests, decoded as the dashboard's reader decodes them."""
    return [
        RecentRequest.of_entry(ring.key_id, e)
        for e in msgspec.json.decode(ring.entries, type=list[RecentEntry])
    ]


T0 = 1_800_000_000.0  # a whole minute: 30_000_000


def record(
    status: int = 200,
    *,
    key_id: str | None = "k1",
    at: float = T0,
    ip: str = "192.0.2.1",
    agent: str | None = "app/1",
    refusal: AuthOutcome | None = None,
) -> RequestRecord:
    return RequestRecord(
        request_id="r",
        method="GET",
        path="/v4/user/me",
        route="/v4/user/me",
        status=status,
        latency=0.001,
        client_ip=ip,
        user_agent=agent,
        key_id=key_id,
        acting_user_id=None,
        auth_failure=refusal,
        started_at=at,
    )


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def test_requests_are_counted_per_key_and_minute_by_status_class() -> None:
    recorder = UsageRecorder(Clock())
    for status in (200, 201, 304, 400, 404, 500, 503):
        recorder.observe(record(status))
    recorder.observe(record(200, at=T0 + 60))
    recorder.observe(record(503, at=T0 + 59.9))  # a late answer to a request of the minute before
    recorder.observe(record(200, key_id="k2"))
    recorder.observe(record(401, key_id=None))

    batch = recorder.drain()
    assert batch.counts == [
        MinuteCount("k1", 30_000_000, 3, 2, 3),
        MinuteCount("k1", 30_000_001, 1, 0, 0),
        MinuteCount("k2", 30_000_000, 1, 0, 0),
    ]
    assert batch.requests == 10
    assert not recorder.drain()


@pytest.mark.parametrize(
    "requests",
    [
        1,
        RING_SIZE - 1,
        RING_SIZE,
        RING_SIZE + 1,  # the ring's first RING_SIZE as stored, then records
        RING_SIZE + 37,
        2 * RING_SIZE - 1,
        2 * RING_SIZE,  # records alone hold the newest RING_SIZE
        3 * RING_SIZE + 5,  # records cut back along the way
    ],
)
def test_only_the_newest_requests_of_a_key_are_kept_for_the_ring_in_order(requests: int) -> None:
    recorder = UsageRecorder(Clock())
    for n in range(requests):
        recorder.observe(record(status=200 + n % 7, at=T0 + n))
    [ring] = recorder.drain().recent
    recent = recent_requests(ring)
    kept = min(requests, RING_SIZE)
    assert ring.requests == kept
    assert [(r.at.timestamp(), r.status) for r in recent] == [
        (T0 + n, 200 + n % 7) for n in range(requests - kept, requests)
    ]
    assert not recorder.drain().recent  # the next flush starts a ring of its own


def test_a_request_in_the_ring_keeps_every_field_to_the_microsecond() -> None:
    recorder = UsageRecorder(Clock())
    recorder.observe(record(404, at=T0 + 0.123456, refusal=AuthOutcome.DEACTIVATED))
    [ring] = recorder.drain().recent
    [request] = recent_requests(ring)
    assert request == RecentRequest(
        "k1",
        datetime(2027, 1, 15, 8, 0, 0, 123456, tzinfo=UTC),
        "r",
        "GET",
        "/v4/user/me",
        "/v4/user/me",
        404,
        1.0,
        "192.0.2.1",
        "app/1",
        None,
        "deactivated",
    )
    assert msgspec.json.decode(ring.entries)[0] == [  # as stored: the moment in whole µs
        1_800_000_000_123_456,
        "r",
        "GET",
        "/v4/user/me",
        "/v4/user/me",
        404,
        1.0,
        "192.0.2.1",
        "app/1",
        None,
        "deactivated",
    ]


def test_keys_pasted_into_a_user_agent_are_redacted_before_they_are_kept() -> None:
    recorder = UsageRecorder(Clock())
    recorder.observe(record(agent="curl ak_live:0000:SECRETSECRET"))
    batch = recorder.drain()
    assert [s.value for s in batch.sightings] == ["curl ak_live:[redacted]", "192.0.2.1"]
    assert recent_requests(batch.recent[0])[0].user_agent == "curl ak_live:[redacted]"


def test_last_use_is_handed_over_at_most_once_a_minute_per_key_except_at_the_end() -> None:
    clock = Clock()
    recorder = UsageRecorder(clock)
    recorder.observe(record(at=T0))
    assert [u.at.timestamp() for u in recorder.drain().last_uses] == [T0]
    clock.now += 30
    recorder.observe(record(at=T0 + 30, ip="192.0.2.9"))
    assert recorder.drain().last_uses == []
    clock.now += 30
    uses = recorder.drain().last_uses
    assert [(u.at.timestamp(), u.ip) for u in uses] == [(T0 + 30, "192.0.2.9")]
    recorder.observe(record(at=T0 + 61))
    assert [u.at.timestamp() for u in recorder.drain(final=True).last_uses] == [T0 + 61]


def test_keys_first_written_together_come_due_again_spread_over_half_a_minute() -> None:
    # A restart with thousands of keys in use: their second writes do not all fall in one
    # flush a minute later. The phase (random in service) says how much of half a minute a
    # key's (or a client's) first write counts as earlier than it was.
    clock = Clock()
    phases = iter([0.0, 0.5, 0.999, 0.999])  # k0, k1, k2's last uses; k0's client; then 0
    recorder = UsageRecorder(clock, phase=lambda: next(phases, 0.0))
    for key_id in ("k0", "k1", "k2"):
        recorder.observe(record(at=T0, key_id=key_id))
    first = recorder.drain()
    assert [u.key_id for u in first.last_uses] == ["k0", "k1", "k2"]
    assert sorted({s.key_id for s in first.sightings}) == ["k0", "k1", "k2"]

    def due_at(seconds: float) -> tuple[list[str], list[str]]:
        clock.now = T0 + seconds
        for key_id in ("k0", "k1", "k2"):
            recorder.observe(record(at=T0 + seconds, key_id=key_id))
        batch = recorder.drain()
        return [u.key_id for u in batch.last_uses], sorted({s.key_id for s in batch.sightings})

    assert due_at(29.9) == ([], [])  # never within half a minute
    assert due_at(30.1) == (["k2"], ["k0"])  # 0.999 of half a minute earlier
    assert due_at(45.1) == (["k1"], [])  # half of half a minute earlier
    assert due_at(60.1) == (["k0"], ["k1", "k2"])  # no phase: a minute
    assert due_at(75.1) == ([], [])
    assert due_at(90.2) == (["k2"], ["k0"])  # from then on a minute apart


def test_a_refused_attempt_with_a_deactivated_key_is_counted_but_is_no_use() -> None:
    recorder = UsageRecorder(Clock())
    recorder.observe(record(401, refusal=AuthOutcome.DEACTIVATED))
    batch = recorder.drain(final=True)
    assert batch.counts == [MinuteCount("k1", 30_000_000, 0, 1, 0)]
    assert batch.last_uses == []


class FlakyStore:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.written: list[UsageBatch] = []

    async def write(self, batch: UsageBatch) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("database is down")
        self.written.append(batch)

    async def prune(self, counts_before_minute: int, sightings_before: datetime) -> None:
        pass

    async def close(self) -> None:
        pass


async def test_a_batch_that_could_not_be_written_is_retried_with_what_came_since() -> None:
    clock = Clock()
    recorder = UsageRecorder(clock)
    store = FlakyStore(failures=1)
    flusher = UsageFlusher(recorder, store, interval=60, now=clock)
    recorder.observe(record(200))
    recorder.observe(record(500))
    assert not await flusher.flush()
    clock.now += 9
    assert flusher.lag == 9
    recorder.observe(record(404))
    assert await flusher.flush()

    assert [b.counts for b in store.written] == [[MinuteCount("k1", 30_000_000, 1, 1, 1)]]
    sightings = {(s.kind, s.value): s.requests for s in store.written[0].sightings}
    assert sightings == {("ip", "192.0.2.1"): 3, ("agent", "app/1"): 3}
    assert (flusher.failures, flusher.written_requests, flusher.lag) == (1, 3, 0)


async def test_stopping_writes_everything_still_in_memory() -> None:
    clock = Clock()
    recorder = UsageRecorder(clock)
    store = FlakyStore(failures=0)
    flusher = UsageFlusher(recorder, store, interval=3600, now=clock)
    await flusher.start()
    for _ in range(5):
        recorder.observe(record(200))
    await asyncio.sleep(0)
    assert store.written == []
    await flusher.stop()
    assert [b.requests for b in store.written] == [5]
    assert [u.key_id for u in store.written[0].last_uses] == ["k1"]


@pytest.mark.parametrize("interval", [0.01])
async def test_the_background_task_flushes_every_interval(interval: float) -> None:
    clock = Clock()
    recorder = UsageRecorder(clock)
    store = FlakyStore(failures=0)
    flusher = UsageFlusher(recorder, store, interval=interval, now=clock)
    await flusher.start()
    try:
        recorder.observe(record(200))
        for _ in range(100):
            await asyncio.sleep(interval)
            if store.written:
                break
        assert [b.requests for b in store.written] == [1]
    finally:
        await flusher.stop()


def test_requests_not_yet_tallied_count_in_the_lag_and_in_the_next_drain() -> None:
    clock = Clock()
    recorder = UsageRecorder(clock)
    flusher = UsageFlusher(recorder, FlakyStore(failures=0), interval=60, now=clock)
    recorder.observe(record())
    clock.now += 5
    assert flusher.lag == 5  # kept, not yet tallied: already pending
    for n in range(ABSORB_EVERY + 2):  # one tally of ABSORB_EVERY, two records kept after it
        recorder.observe(record(404 if n % 2 else 200, key_id=f"k{n % 3}", at=T0 + n / 1000))
    assert flusher.lag == 5

    batch = recorder.drain()
    assert [(c.key_id, c.success, c.client_error) for c in batch.counts] == [
        ("k0", 43, 43),
        ("k1", 44, 43),  # with the first request
        ("k2", 43, 43),
    ]
    assert batch.requests == ABSORB_EVERY + 3
    assert flusher.lag == 0


def test_a_drain_of_many_keys_pauses_between_steps_and_loses_nothing() -> None:
    keys = [f"k{n:04d}" for n in range(2 * DRAIN_STEP + 1)]
    recorder = UsageRecorder(Clock())
    for key_id in keys:
        recorder.observe(record(key_id=key_id))
    batch = UsageBatch()
    pauses = sum(1 for _ in recorder.drain_in_steps(batch))
    assert pauses == 2  # three steps of at most DRAIN_STEP keys
    assert [c.key_id for c in batch.counts] == keys
    assert [r.key_id for r in batch.recent] == keys
    assert not recorder.drain()  # everything was taken


async def test_a_flush_cancelled_mid_drain_keeps_its_counts_for_the_next() -> None:
    keys = [f"k{n:04d}" for n in range(2 * DRAIN_STEP)]
    recorder = UsageRecorder(Clock())
    for key_id in keys:
        recorder.observe(record(key_id=key_id))
    store = FlakyStore(failures=0)
    flusher = UsageFlusher(recorder, store, interval=60, now=Clock())
    flushing = asyncio.create_task(flusher.flush())
    await asyncio.sleep(0)  # the flush runs to its first pause
    flushing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await flushing
    assert store.written == []
    assert [(c.key_id, c.success) for c in recorder.drain().counts] == [(k, 1) for k in keys]


def sightings_of(batch: UsageBatch) -> dict[tuple[str, str], tuple[float, float, int]]:
    return {
        (s.kind, s.value): (s.first_seen.timestamp(), s.last_seen.timestamp(), s.requests)
        for s in batch.sightings
    }


def test_a_key_called_from_several_clients_in_turn_has_each_one_added_up() -> None:
    recorder = UsageRecorder(Clock())
    for n, ip in enumerate(["192.0.2.1", "192.0.2.2", "192.0.2.1", "192.0.2.3", "192.0.2.2"]):
        recorder.observe(record(at=T0 + n, ip=ip))
    assert sightings_of(recorder.drain()) == {
        ("ip", "192.0.2.1"): (T0, T0 + 2, 2),
        ("ip", "192.0.2.2"): (T0 + 1, T0 + 4, 2),
        ("ip", "192.0.2.3"): (T0 + 3, T0 + 3, 1),
        ("agent", "app/1"): (T0, T0 + 4, 5),
    }


def test_a_client_already_written_waits_a_minute_and_a_new_one_goes_out_at_once() -> None:
    clock = Clock()
    recorder = UsageRecorder(clock)
    recorder.observe(record(at=T0))
    assert sightings_of(recorder.drain()) == {
        ("ip", "192.0.2.1"): (T0, T0, 1),
        ("agent", "app/1"): (T0, T0, 1),
    }
    clock.now = T0 + 5
    recorder.observe(record(at=T0 + 4))
    recorder.observe(record(at=T0 + 5, ip="198.51.100.7"))  # a new client of the same key
    batch = recorder.drain()
    assert batch.requests == 2  # counted and in the ring as ever; only the sighting waits
    assert [r.requests for r in batch.recent] == [2]
    assert len(msgspec.json.decode(batch.recent[0].entries)) == 2
    assert sightings_of(batch) == {
        ("ip", "198.51.100.7"): (T0 + 5, T0 + 5, 1),
        ("agent", "app/1"): (T0 + 5, T0 + 5, 1),
    }
    assert recorder.oldest_pending is None  # a waiting sighting is no unwritten request
    clock.now = T0 + 30
    recorder.observe(record(at=T0 + 30))
    assert recorder.drain().sightings == []
    clock.now = T0 + 60  # a minute after the first write: what waited goes out, added up
    assert sightings_of(recorder.drain()) == {
        ("ip", "192.0.2.1"): (T0 + 4, T0 + 30, 2),
        ("agent", "app/1"): (T0 + 4, T0 + 30, 2),
    }
    assert recorder.drain().sightings == []


def test_a_waiting_sighting_is_written_at_the_end() -> None:
    clock = Clock()
    recorder = UsageRecorder(clock)
    recorder.observe(record(at=T0))
    recorder.drain()
    clock.now = T0 + 1
    recorder.observe(record(at=T0 + 1))
    assert recorder.drain().sightings == []
    assert sightings_of(recorder.drain(final=True)) == {
        ("ip", "192.0.2.1"): (T0 + 1, T0 + 1, 1),
        ("agent", "app/1"): (T0 + 1, T0 + 1, 1),
    }


def test_clients_waiting_beyond_their_bound_are_written_at_once() -> None:
    recorder = UsageRecorder(Clock(), max_held_sightings=2)
    keys = [f"k{n}" for n in range(3)]
    for key_id in keys:
        recorder.observe(record(key_id=key_id))
    recorder.drain()
    for key_id in keys:
        recorder.observe(record(key_id=key_id))
    batch = recorder.drain()
    assert {s.key_id for s in batch.sightings} == {"k2"}  # k0 and k1 wait, k2 is one too many
