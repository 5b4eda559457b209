"""Operations endpoints: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from litestar import Response, Router, get
from sqlalchemy import text

from keyport.bootstrap import Container
from keyport.services.prometheus import MEDIA_TYPE


def ops_router(container: Container) -> Router:
    @get("/healthz", summary="The process is up", include_in_schema=True)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @get("/readyz", summary="The database answers")
    async def readyz() -> Response[dict[str, str]]:
        try:
            async with container.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception:
            return Response(
                {"status": "unavailable", "database": "unreachable"},
                status_code=503,
                headers={"Retry-After": "5"},
            )
        return Response({"status": "ok", "database": "ok"})

    @get("/metrics", summary="Prometheus metrics of this process", media_type=MEDIA_TYPE)
    async def metrics() -> str:
        return container.observability.metrics.render()

    return Router(path="/", route_handlers=[healthz, readyz, metrics], tags=["operations"])
