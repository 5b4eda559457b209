"""The cost of usage recording inside one process, without HTTP: `UsageRecorder.observe` per
request, and one flush of a 5-second batch spread over its requests.

Complements the end-to-end runs of usage_overhead.py: their req/s move by a fifth between
identical runs on a shared VM, these numbers by a few percent.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass

from keyport.bootstrap import build_container
from keyport.config import Settings
from keyport.services.observability.request_record import RequestRecord


@dataclass(frozen=True)
class InProcessCost:
    observe_us: float  # CPU per request on the request path
    flush_us: float  # CPU per request of writing its usage (background, amortised)
    batch: int  # requests per flush


def _records(key_id: str, count: int) -> list[RequestRecord]:
    now = time.time()
    return [
        RequestRecord(
            request_id=f"{n:024x}",
            method="GET",
            path="/v4/user/me",
            route="/v4/user/me",
            status=200,
            latency=0.0002,
            client_ip="127.0.0.1",
            user_agent="wrk",
            key_id=key_id,
            acting_user_id=None,
            auth_failure=None,
            started_at=now + n / count,
        )
        for n in range(count)
    ]


async def _measure(database_url: str, key_id: str, batch: int, repeats: int) -> InProcessCost:
    container = build_container(Settings(database_url=database_url, request_log=False))
    recorder, flusher = container.observability.recorder, container.observability.flusher
    assert recorder is not None and flusher is not None
    records = _records(key_id, batch)
    observe: list[float] = []
    flush: list[float] = []
    try:
        for _ in range(repeats):
            started = time.process_time()
            for record in records:
                recorder.observe(record)
            observe.append((time.process_time() - started) / batch)
            started = time.process_time()  # all threads: aiosqlite's worker included
            assert await flusher.flush(final=True)
            flush.append((time.process_time() - started) / batch)
    finally:
        await container.close()
    return InProcessCost(statistics.median(observe) * 1e6, statistics.median(flush) * 1e6, batch)


def in_process_cost(
    database_url: str, key_id: str, *, batch: int = 25_000, repeats: int = 7
) -> InProcessCost:
    """`batch`: requests in one flush interval (5 s at 5,000 req/s)."""
    return asyncio.run(_measure(database_url, key_id, batch, repeats))
