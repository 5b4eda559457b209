"""Personal access tokens against a real `keyport serve`, changed by the CLI from outside: a
client sending `Bearer rgo-…` with no user header gets its own user; revocation, the policy
and expiry reach the server within a second; usage and last use land on the token's row; and
no token reaches the server's output or the database."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support import databases
from tests.support.api_calls import call, refused
from tests.support.databases import dump_database
from tests.support.seed import init_company
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


def _token(server: ServerProcess, name: str = "MCP", *extra: str) -> dict[str, str]:
    made: dict[str, str] = cli_json(
        server.env, "token", "create", "--user", "owner@acme.test", "--name", name, *extra
    )
    return made


def wait_for(base_url: str, token: str, expected: tuple[int, dict[str, object]]) -> float:
    started = time.monotonic()
    while True:
        answer = call(base_url, "/v4/user/me", token)
        elapsed = time.monotonic() - started
        if answer == expected:
            return elapsed
        assert elapsed < 1.0, f"still {answer} after {elapsed:.2f}s"
        time.sleep(0.02)


def test_a_client_with_only_a_token_gets_its_own_user(server: ServerProcess) -> None:
    made = _token(server)
    status, me = call(server.base_url, "/v4/user/me", made["token"])
    assert (status, me["email"], me["id"]) == (200, "owner@acme.test", made["userId"])


def test_cli_changes_reach_the_running_server_within_a_second(
    server: ServerProcess, database_url: str
) -> None:
    first, second, third = _token(server, "one"), _token(server, "two"), _token(server, "three")
    me = call(server.base_url, "/v4/user/me", first["token"])
    for _ in range(20):  # cached in the server
        call(server.base_url, "/v4/user/me", first["token"])
        call(server.base_url, "/v4/user/me", second["token"])
    run_cli(server.env, "token", "revoke", first["id"])
    assert wait_for(server.base_url, first["token"], refused("Invalid API key")) < 1.0
    run_cli(server.env, "company", "set-token-policy", "--deny")
    off = refused("Personal access tokens are disabled for this company")
    assert wait_for(server.base_url, second["token"], off) < 1.0
    run_cli(server.env, "company", "set-token-policy", "--allow")
    assert wait_for(server.base_url, second["token"], (200, me[1])) < 1.0

    # Expiry is decided by the clock at every request (moved here in the database directly,
    # before the server first reads the token).
    soon = datetime.now(UTC) + timedelta(seconds=2)
    databases.run_blocking(set_expiry(database_url, third["id"], soon))
    assert call(server.base_url, "/v4/user/me", third["token"])[0] == 200
    time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.05)
    assert call(server.base_url, "/v4/user/me", third["token"]) == refused(
        "Personal access token has expired"
    )


async def set_expiry(database_url: str, token_id: str, when: datetime) -> None:
    from sqlalchemy import update

    from keyport.db.engine import create_engine
    from keyport.db.tables import personal_access_tokens

    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                update(personal_access_tokens)
                .where(personal_access_tokens.c.id == token_id)
                .values(expires_at=when)
            )
    finally:
        await engine.dispose()


def test_no_token_reaches_the_output_or_the_database_and_last_use_is_kept(
    server: ServerProcess, database_url: str, tmp_path: Path
) -> None:
    tokens = [_token(server, f"t{n}")["token"] for n in range(3)]
    tampered = tokens[0][:-1] + ("A" if tokens[0][-1] != "A" else "B")
    for token in [*tokens, tampered, tokens[1] + "x"]:
        for path in ["/v4/user/me", "/v4/user", "/v1/authorize", "/v1/keys"]:
            call(server.base_url, path, token)
    listed = cli_json(server.env, "token", "list")
    revoked = next(t for t in listed if t["hint"] == tokens[2][:8] + "…")
    run_cli(server.env, "token", "revoke", revoked["id"])
    call(server.base_url, "/v4/user/me", tokens[2])
    server.stop()  # a clean stop writes the usage it still holds

    output = server.output()
    assert output
    stored = dump_database(database_url, tmp_path)
    for token in [*tokens, tampered]:
        assert token not in output and token[4:24] not in output
        assert token.encode() not in stored and token[4:24].encode() not in stored
    used = {t["hint"]: t for t in cli_json(server.env, "token", "list")}
    assert used[tokens[0][:8] + "…"]["lastUsedAt"] is not None
    assert used[tokens[0][:8] + "…"]["lastUsedIp"] == "127.0.0.1"
