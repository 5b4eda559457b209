"""Operations endpoints: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio

from litestar import Response, Router, get
from redis.asyncio import Redis
from sqlalchemy import text

from keyport.bootstrap import Container
from keyport.services.prometheus import MEDIA_TYPE

CHECK_TIMEOUT = 2.0  # seconds; a dependency slower than this is not ready


def ops_router(container: Container) -> Router:
    @get("/healthz", summary="The process is up", include_in_schema=True)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @get("/readyz", summary="The database answers (and how Redis is, if configured)")
    async def readyz() -> Response[dict[str, str]]:
        # Redis down is not unready: limits and evictions fall back to this process.
        report = {"status": "ok", "database": await _database(container)}
        if container.redis is not None:
            report["redis"] = await _redis(container.redis)
        if report["database"] != "ok":
            report["status"] = "unavailable"
            return Response(report, status_code=503, headers={"Retry-After": "5"})
        return Response(report)

    @get("/metrics", summary="Prometheus metrics of this process", media_type=MEDIA_TYPE)
    async def metrics() -> str:
        return container.observability.metrics.render()

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
