"""Usage, logs and metrics of a real `keyport serve`, stopped the way a platform stops it.

On SQLite and PostgreSQL: a clean shutdown (SIGTERM) writes every counted request, and no
secret — key or password — reaches the output, the database or /metrics.
"""

from __future__ import annotations

import asyncio
import json
import re
from functools import partial
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from keyport.db.engine import create_engine
from keyport.db.tables import api_keys, key_recent_batches, key_sightings
from tests.support.api_calls import call
from tests.support.databases import dump_database
from tests.support.seed import change_key, create_keys, init_company
from tests.support.server import ServerProcess, keyport_env
from tests.support.usage import usage_totals
from tests.support.waiting import wait_until

OWNER_PASSWORD = "correct-horse-battery-9"
WRONG_PASSWORD = "wrong-horse-staple-7"


def served(database_url: str, tmp_path: Path, **env: str) -> ServerProcess:
    environment = keyport_env(database_url, **env)
    init_company(environment, "Acme", "owner@acme.test", owner_password=OWNER_PASSWORD)
    return ServerProcess(environment, tmp_path / "server.log").start()


async def usage_in_database(database_url: str, key_id: str) -> dict[str, object]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            totals = await usage_totals(connection, key_id)
            recent = await connection.scalar(
                select(func.sum(key_recent_batches.c.requests)).where(
                    key_recent_batches.c.key_id == key_id
                )
            )
            sightings = await connection.scalar(
                select(func.count())
                .select_from(key_sightings)
                .where(key_sightings.c.key_id == key_id)
            )
            last_used = (
                await connection.execute(
                    select(api_keys.c.last_used_at, api_keys.c.last_used_ip).where(
                        api_keys.c.id == key_id
                    )
                )
            ).one()
    finally:
        await engine.dispose()
    return {
        "counts": totals,
        "recent": recent,
        "sightings": sightings,
        "last_used_ip": last_used.last_used_ip,
        "used": last_used.last_used_at is not None,
    }


def request_lines(output: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith('{"time"')]


def test_a_clean_shutdown_writes_every_counted_request(database_url: str, tmp_path: Path) -> None:
    # The first background flush would come after an hour: only the shutdown can write.
    server = served(database_url, tmp_path, KEYPORT_USAGE_FLUSH_INTERVAL="3600")
    try:
        (created,) = create_keys(server.env, 1, days=30)
        for _ in range(20):
            assert call(server.base_url, "/v4/user/me", created["key"])[0] == 200
        for _ in range(5):
            assert call(server.base_url, "/v4/user", created["key"])[0] == 400
    finally:
        assert server.stop() in (0, -15)

    stored = asyncio.run(usage_in_database(database_url, created["id"]))
    assert stored == {
        "counts": (20, 5, 0),
        "recent": 25,
        "sightings": 2,  # 127.0.0.1 and urllib's user agent
        "last_used_ip": "127.0.0.1",
        "used": True,
    }
    logged = [line for line in request_lines(server.output()) if line["key_id"] == created["id"]]
    assert [line["status"] for line in logged] == [200] * 20 + [400] * 5
    assert {line["route"] for line in logged} == {"/v4/user/me", "/v4/user"}


def sign_in(base_url: str, password: str) -> int:
    with httpx.Client(base_url=base_url, timeout=10) as browser:
        page = browser.get("/admin/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token, page.text
        # Cookies are Secure: a browser sends them back to http://127.0.0.1, httpx does not.
        cookie = page.headers["set-cookie"].split(";", 1)[0]
        answer = browser.post(
            "/admin/login",
            data={
                "csrf_token": token.group(1),
                "email": "owner@acme.test",
                "password": password,
                "next": "/admin/api-keys",
            },
            headers={"cookie": cookie},
        )
        return answer.status_code


def refuses(base_url: str, key: str) -> bool:
    return call(base_url, "/v1/authorize", key)[0] != 200


@pytest.mark.parametrize("flush_interval", ["0.2"])
def test_no_key_or_password_reaches_the_output_the_database_or_the_metrics(
    database_url: str, tmp_path: Path, flush_interval: str
) -> None:
    server = served(database_url, tmp_path, KEYPORT_USAGE_FLUSH_INTERVAL=flush_interval)
    try:
        created = create_keys(server.env, 3)
        keys = [c["key"] for c in created]
        tampered = keys[0][:-1] + ("A" if keys[0][-1] != "A" else "B")
        for key in [*keys, tampered, keys[1] + "x"]:
            for path in ["/v4/user/me", "/v4/user", "/v4/unknown", f"/v4/user/{key}"]:
                call(server.base_url, path, key)
        for verb, changed in [("deactivate", 1), ("revoke", 2)]:
            change_key(server.env, verb, created[changed]["id"])
            # Until the server's cache has heard of the change; outside /v4, so these checks
            # are not among the API lines counted below, and only the last is refused.
            wait_until(
                partial(refuses, server.base_url, keys[changed]),
                f"the server refuses the key after `{verb}`",
            )
        for key in keys:
            call(server.base_url, "/v4/user/me", key)
        assert sign_in(server.base_url, WRONG_PASSWORD) == 400
        assert sign_in(server.base_url, OWNER_PASSWORD) == 303
        metrics = httpx.get(f"{server.base_url}/metrics", timeout=10).text
    finally:
        server.stop()

    output = server.output()
    stored = dump_database(database_url, tmp_path)
    api_lines = [line for line in request_lines(output) if str(line["path"]).startswith("/v4")]
    assert len(api_lines) == 5 * 4 + 3  # the log did record the requests
    # The refused check of the deactivated key and its /v4/user/me call after it.
    assert 'keyport_api_auth_total{outcome="deactivated"} 2.0' in metrics
    usage = asyncio.run(usage_in_database(database_url, created[0]["id"]))
    assert usage["recent"] == 5  # usage did reach the database that was searched
    secrets = [k.split(":")[2] for k in [*keys, tampered]]
    for secret in [*secrets, *(s[:20] for s in secrets), OWNER_PASSWORD, WRONG_PASSWORD]:
        assert secret not in output
        assert secret not in metrics
        assert secret.encode() not in stored
    assert "Bearer" not in output and "authorization" not in output.lower()
