"""Operations endpoints: liveness and readiness."""

from __future__ import annotations

from litestar import Response, Router, get
from sqlalchemy import text

from keyport.bootstrap import Container


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
            return Response({"status": "unavailable", "database": "unreachable"},
                            status_code=503, headers={"Retry-After": "5"})
        return Response({"status": "ok", "database": "ok"})

    return Router(path="/", route_handlers=[healthz, readyz], tags=["operations"])
