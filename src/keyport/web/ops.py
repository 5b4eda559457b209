"""Operations endpoints: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio

import msgspec
from litestar import Response, Router, get
from litestar.openapi import ResponseSpec
from redis.asyncio import Redis
from sqlalchemy import text

from keyport.bootstrap import Container
from keyport.services.prometheus import MEDIA_TYPE
from keyport.web.openapi import ops_operation

CHECK_TIMEOUT = 2.0  # seconds; a dependency slower than this is not ready


class Readiness(msgspec.Struct):
    status: str  # ok | unavailable
    database: str  # ok | unreachable
    redis: str | msgspec.UnsetType = msgspec.UNSET  # only when Redis is configured


class Health(msgspec.Struct):
    status: str


def ops_router(container: Container) -> Router:
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
        report = Readiness("ok", await _database(container))
        if container.redis is not None:
            report.redis = await _redis(container.redis)
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
        return await container.observability.metrics.scrape()

    return Router(path="/", route_handlers=[healthz, readyz, metrics], tags=["operations"])


async def _database(container: Container) -> str:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT), container.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:
        return "unreachable"
    return "ok"


async def _redis(redis: Redis) -> str:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            await redis.ping()
    except Exception:
        return "unreachable"
    return "ok"
