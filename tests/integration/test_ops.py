"""Liveness and readiness through the ops router, which gets only the probes it needs."""

from __future__ import annotations

import httpx
from litestar import Litestar

from keyport.web.ops import ops_router


async def test_liveness_and_readiness_answer(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "database": "ok"}


async def test_a_database_that_does_not_answer_makes_the_process_unready() -> None:

    async def down() -> None:
        raise ConnectionError("no database")

    async def up() -> None:
        return None

    async def no_metrics() -> str:
        return ""

    app = Litestar([ops_router(database=down, redis=up, scrape_metrics=no_metrics)])
    # Litestar types its ASGI scope more narrowly than httpx's ASGI callable does.
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://ops.test") as http:
        ready = await http.get("/readyz")
    assert ready.status_code == 503
    assert ready.headers["retry-after"] == "5"
    assert ready.json() == {"status": "unavailable", "database": "unreachable", "redis": "ok"}
