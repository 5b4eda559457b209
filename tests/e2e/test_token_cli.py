"""`keyport token …`, `keyport company set-token-policy` and `keyport scan` for tokens."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.server import cli_json, keyport_env, run_cli


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return keyport_env(f"sqlite:///{tmp_path / 'cli.db'}")


def test_create_list_regenerate_and_revoke(env: dict[str, str], tmp_path: Path) -> None:
    created = cli_json(env, "init", "--company", "Acme", "--owner-email", "o@acme.test")
    made = cli_json(
        env, "token", "create", "--user", "o@acme.test", "--name", "CI", "--days", "10",
        "--scope", "users:read",
    )  # fmt: skip
    assert set(made) == {"id", "token", "name", "userId", "companyId", "scopes", "expiresAt"}
    assert made["token"].startswith("rgo-") and len(made["token"]) == 36
    assert (made["userId"], made["companyId"]) == (created["ownerId"], created["companyId"])
    assert made["scopes"] == ["users:read"]
    listed = cli_json(env, "token", "list", "--user", "o@acme.test")
    assert [(t["id"], t["status"]) for t in listed] == [(made["id"], "active")]
    assert made["token"] not in run_cli(env, "token", "list").stdout

    again = cli_json(env, "token", "regenerate", made["id"])
    assert (again["name"], again["scopes"]) == ("CI", ["users:read"])
    states = {t["id"]: t["status"] for t in cli_json(env, "token", "list")}
    assert states == {made["id"]: "revoked", again["id"]: "active"}
    revoked = run_cli(env, "token", "revoke", again["id"]).stdout
    assert revoked == f"Personal access token {again['id']} is now revoked\n"
    twice = run_cli(env, "token", "revoke", again["id"], check=False)
    assert (twice.returncode, twice.stderr) == (
        2,
        "keyport: Personal access token is already revoked\n",
    )


def test_refusals_exit_2_and_name_the_reason(env: dict[str, str]) -> None:
    run_cli(env, "init", "--company", "Acme", "--owner-email", "o@acme.test")
    base = ["token", "create", "--user", "o@acme.test", "--name", "X"]
    manage = run_cli(env, *base, "--scope", "keys:manage", check=False)
    assert manage.returncode == 2 and "keys:manage" in manage.stderr
    policy = run_cli(env, "company", "set-token-policy", "--max-days", "30").stdout
    assert policy == ("Personal access tokens are allowed; lifetime: 30 days; networks: anywhere\n")
    longer = run_cli(env, *base, "--days", "31", check=False)
    assert longer.returncode == 2 and "at most 30 days" in longer.stderr
    endless = run_cli(env, *base, "--no-expiry", check=False)
    assert endless.returncode == 2 and "at most 30 days" in endless.stderr
    off = run_cli(env, "company", "set-token-policy", "--deny", "--allow-ip", "10.0.0.0/8").stdout
    assert off == (
        "Personal access tokens are turned off; lifetime: 30 days; networks: 10.0.0.0/8\n"
    )
    refused = run_cli(env, *base, check=False)
    assert (refused.returncode, refused.stderr) == (
        2,
        "keyport: Personal access tokens are disabled for this company\n",
    )


def test_scan_finds_real_tokens_only_and_prints_no_token(
    env: dict[str, str], tmp_path: Path
) -> None:
    run_cli(env, "init", "--company", "Acme", "--owner-email", "o@acme.test")
    made = cli_json(env, "token", "create", "--user", "o@acme.test", "--name", "CI")
    token = made["token"]
    fake = token[:-1] + ("A" if token[-1] != "A" else "B")
    leaked = tmp_path / "leak.txt"
    leaked.write_text(f"ok\nMEETERGO_TOKEN={token}\n{fake}\n")
    result = run_cli(env, "scan", str(leaked), check=False)
    assert result.returncode == 1
    assert result.stdout == f"{leaked}:2: Keyport personal access token {token[:8]}…\n"
    assert token not in result.stdout + result.stderr
