"""Operations endpoints: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from litestar import Response, Router, get

from keyport.services.prometheus import MEDIA_TYPE

CHECK_TIMEOUT = 2.0  # seconds; a dependency slower than this is not ready
Probe = Callable[[], Awaitable[object]]  # raises (or hangs) when the dependency is not there


def ops_router(
    *, database: Probe, redis: Probe | None, render_metrics: Callable[[], str]
) -> Router:
    @get("/healthz", summary="The process is up", include_in_schema=True)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @get("/readyz", summary="The database answers (and how Redis is, if configured)")
    async def readyz() -> Response[dict[str, str]]:
        # Redis down is not unready: limits and evictions fall back to this process.
        report = {"status": "ok", "database": await _check(database)}
        if redis is not None:
            report["redis"] = await _check(redis)
        if report["database"] != "ok":
            report["status"] = "unavailable"
            return Response(report, status_code=503, headers={"Retry-After": "5"})
        return Response(report)

    @get("/metrics", summary="Prometheus metrics of this process", media_type=MEDIA_TYPE)
    async def metrics() -> str:
        return render_metrics()

    return Router(path="/", route_handlers=[healthz, readyz, metrics], tags=["operations"])


async def _check(probe: Probe) -> str:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            await probe()
    except Exception:
        return "unreachable"
    return "ok"
