"""Operations endpoints: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import msgspec
from litestar import Response, Router, get
from litestar.openapi import ResponseSpec

from keyport.services.observability.prometheus import MEDIA_TYPE
from keyport.web.openapi import ops_operation

CHECK_TIMEOUT = 2.0  # seconds; a dependency slower than this is not ready
Probe = Callable[[], Awaitable[object]]  # raises (or hangs) when the dependency is not there


class Readiness(msgspec.Struct):
    status: str  # ok | unavailable
    database: str  # ok | unreachable
    redis: str | msgspec.UnsetType = msgspec.UNSET  # only when Redis is configured


class Health(msgspec.Struct):
    status: str


def ops_router(
    *, database: Probe, redis: Probe | None, scrape_metrics: Callable[[], Awaitable[str]]
) -> Router:
    @get("/healthz", operation_id="healthz", summary="The process is up", **ops_operation())
    async def healthz() -> Health:
        return Health("ok")

    unready = ResponseSpec(
        Readiness, description="The database does not answer", generate_examples=False
    )

    @get(
        "/readyz",
        operation_id="readyz",
        summary="The database answers (and how Redis is, if configured)",
        **ops_operation(answers={503: unready}),
    )
    async def readyz() -> Response[Readiness]:
        # Redis down is not unready: limits and evictions fall back to this process.
        report = Readiness("ok", await _check(database))
        if redis is not None:
            report.redis = await _check(redis)
        if report.database != "ok":
            report.status = "unavailable"
            return Response(report, status_code=503, headers={"Retry-After": "5"})
        return Response(report)

    @get(
        "/metrics",
        operation_id="metrics",
        summary="Prometheus metrics of the whole server (all workers)",
        media_type=MEDIA_TYPE,
        **ops_operation(),
    )
    async def metrics() -> str:
        return await scrape_metrics()

    return Router(path="/", route_handlers=[healthz, readyz, metrics], tags=["operations"])


async def _check(probe: Probe) -> str:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            await probe()
    except Exception:
        return "unreachable"
    return "ok"
