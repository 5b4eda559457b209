"""A real `keyport serve` process driven over HTTP and changed by the CLI from outside.

Data a test only needs is made in-process (tests.support.seed); the CLI's own changes are
what test_cli_changes_reach_the_running_server_within_a_second checks."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support import databases
from tests.support.api_calls import call, refused
from tests.support.databases import dump_database
from tests.support.seed import change_key, create_keys, init_company
from tests.support.server import ServerProcess, cli_json, keyport_env, run_cli


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    env = keyport_env(database_url)
    init_company(env, "Acme", "owner@acme.test")
    process = ServerProcess(env, tmp_path / "server.log").start()
    try:
        yield process
    finally:
        process.stop()


def wait_for(
    base_url: str, key: str, expected: tuple[int, dict[str, object]], limit: float = 1.0
) -> float:
    """Seconds until the server answers `expected`; fails past `limit`."""
    started = time.monotonic()
    while True:
        answer = call(base_url, "/v4/user/me", key)
        elapsed = time.monotonic() - started
        if answer == expected:
            return elapsed
        assert elapsed < limit, f"still {answer} after {elapsed:.2f}s"
        time.sleep(0.02)


def test_cli_changes_reach_the_running_server_within_a_second(server: ServerProcess) -> None:
    created = cli_json(server.env, "key", "create", "--days", "30")
    key = created["key"]
    status, me = call(server.base_url, "/v4/user/me", key)
    assert (status, me["email"]) == (200, "owner@acme.test")
    for _ in range(20):  # make sure the principal is cached in the server
        call(server.base_url, "/v4/user/me", key)

    run_cli(server.env, "key", "deactivate", created["id"])
    wait_for(server.base_url, key, refused("API key is deactivated"))
    run_cli(server.env, "key", "activate", created["id"])
    assert wait_for(server.base_url, key, (200, me)) < 1.0
    run_cli(server.env, "key", "revoke", created["id"])
    wait_for(server.base_url, key, refused("Invalid API key"))


def test_a_key_expires_by_the_real_clock(server: ServerProcess, database_url: str) -> None:
    (created,) = create_keys(server.env, 1, days=1)
    soon = datetime.now(UTC) + timedelta(seconds=2)
    databases.run_blocking(set_expiry(database_url, created["id"], soon))
    assert call(server.base_url, "/v4/user/me", created["key"])[0] == 200
    time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.05)
    assert call(server.base_url, "/v4/user/me", created["key"]) == refused("API key has expired")


async def set_expiry(database_url: str, key_id: str, when: datetime) -> None:
    """Move a key's expiry close, as if its 1 day had nearly passed."""
    from sqlalchemy import update

    from keyport.db.engine import create_engine
    from keyport.db.tables import api_keys

    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                update(api_keys).where(api_keys.c.id == key_id).values(expires_at=when)
            )
    finally:
        await engine.dispose()


def test_no_secret_reaches_the_database_or_the_output(
    server: ServerProcess, database_url: str, tmp_path: Path
) -> None:
    keys = [created["key"] for created in create_keys(server.env, 3)]
    tampered = keys[0][:-1] + ("A" if keys[0][-1] != "A" else "B")
    for key in [*keys, tampered, keys[1] + "x"]:
        for path in ["/v4/user/me", "/v4/user", "/v4/unknown"]:
            call(server.base_url, path, key)
    change_key(server.env, "revoke", keys[2].split(":")[1])
    call(server.base_url, "/v4/user/me", keys[2])
    server.stop()

    secrets = [k.split(":")[2] for k in [*keys, tampered]]
    output = server.output()
    assert output  # the server did print something (its start banner)
    stored = dump_database(database_url, tmp_path)
    for secret in secrets:
        assert secret not in output
        assert secret[:20] not in output
        assert secret.encode() not in stored and secret[:20].encode() not in stored


def test_first_start_creates_a_demo_owner_and_prints_how_to_sign_in(tmp_path: Path) -> None:
    env = keyport_env(f"sqlite:///{tmp_path / 'fresh.db'}")
    process = ServerProcess(env, tmp_path / "fresh.log").start()
    try:
        banner = process.output()
    finally:
        process.stop()
    assert f"Keyport dashboard: http://localhost:{process.port}/admin/api-keys" in banner
    assert "Sign in as owner@example.com with password " in banner
    restarted = ServerProcess(env, tmp_path / "again.log").start()
    restarted.stop()
    assert "password" not in restarted.output()
