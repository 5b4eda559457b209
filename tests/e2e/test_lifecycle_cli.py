"""`keyport key rotate`, key-id commands without --company-id, `keyport webhook …`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.server import cli_json, keyport_env, run_cli


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return keyport_env(f"sqlite:///{tmp_path / 'cli.db'}")


@pytest.fixture
def two_companies(env: dict[str, str]) -> tuple[str, str]:
    first = cli_json(env, "init", "--company", "Acme", "--owner-email", "o@acme.test")
    second = cli_json(env, "init", "--company", "Globex", "--owner-email", "o@globex.test")
    return first["companyId"], second["companyId"]


def test_key_commands_on_an_id_need_no_company_id(
    env: dict[str, str], two_companies: tuple[str, str]
) -> None:
    key = cli_json(env, "key", "create", "--days", "5", "--company-id", two_companies[1])
    for verb, state in (("deactivate", "inactive"), ("activate", "active")):
        result = run_cli(env, "key", verb, key["id"])
        assert result.stdout == f"API key {key['id']} is now {state}\n"
    assert "limited to 9 requests" in run_cli(env, "key", "set-limit", key["id"], "9").stdout
    scoped = run_cli(env, "key", "set-scopes", key["id"], "users:read").stdout
    assert scoped == f"API key {key['id']} now holds: users:read\n"
    allowed = run_cli(env, "key", "set-allowed-ips", key["id"], "10.0.0.0/8").stdout
    assert allowed == f"API key {key['id']} may now be used from: 10.0.0.0/8\n"
    unknown = run_cli(env, "key", "revoke", "00000000-0000-4000-8000-000000000000", check=False)
    assert (unknown.returncode, unknown.stderr) == (2, "keyport: API key not found\n")


def test_key_rotate_prints_the_new_key_and_the_previous_id(
    env: dict[str, str], two_companies: tuple[str, str]
) -> None:
    old = cli_json(
        env, "key", "create", "--name", "CI", "--days", "20", "--company-id", two_companies[0]
    )
    rotated = cli_json(env, "key", "rotate", old["id"], "--grace", "1h", "--days", "10")
    assert set(rotated) == {"id", "key", "name", "expiresAt", "previousKeyId"}
    assert rotated["previousKeyId"] == old["id"]
    assert rotated["name"] == "CI"
    assert rotated["key"].startswith(f"ak_live:{rotated['id']}:")
    listed = {k["id"]: k for k in cli_json(env, "key", "list", "--company-id", two_companies[0])}
    assert listed[old["id"]]["state"] == "active"  # until the grace ends
    assert listed[rotated["id"]]["state"] == "active"

    at_once = cli_json(env, "key", "rotate", rotated["id"])
    listed = {k["id"]: k for k in cli_json(env, "key", "list", "--company-id", two_companies[0])}
    assert listed[rotated["id"]]["state"] == "expired"
    assert listed[at_once["id"]]["state"] == "active"
    bad = run_cli(env, "key", "rotate", at_once["id"], "--grace", "8d", check=False)
    assert bad.returncode == 2
    assert "keyport: --grace must be a whole number of seconds from 0 to 604800." in bad.stderr
    expired = run_cli(env, "key", "rotate", rotated["id"], check=False)
    assert (expired.returncode, expired.stderr) == (2, "keyport: API key has expired\n")


def test_webhook_add_list_remove(env: dict[str, str]) -> None:
    run_cli(env, "init", "--company", "Acme", "--owner-email", "o@acme.test")
    refused = run_cli(env, "webhook", "add", "http://127.0.0.1:9/x", check=False)
    assert (refused.returncode, refused.stderr) == (
        2,
        "keyport: URL must not point at a private, loopback or otherwise internal address"
        " (for local testing, start Keyport with KEYPORT_WEBHOOK_ALLOW_PRIVATE=true).\n",
    )

    private_ok = {**env, "KEYPORT_WEBHOOK_ALLOW_PRIVATE": "true"}
    added = cli_json(
        private_ok, "webhook", "add", "http://127.0.0.1:9/x", "--event", "api_key.rotated"
    )
    assert set(added) == {"id", "secret"} and added["secret"].startswith("whsec_")
    listed = cli_json(env, "webhook", "list")
    assert listed == [
        {
            "id": added["id"],
            "url": "http://127.0.0.1:9/x",
            "events": ["api_key.rotated"],
            "createdAt": listed[0]["createdAt"],
            "disabledAt": None,
        }
    ]
    assert added["secret"] not in str(listed)
    assert run_cli(env, "webhook", "remove", added["id"]).returncode == 0
    assert cli_json(env, "webhook", "list") == []
    again = run_cli(env, "webhook", "remove", added["id"], check=False)
    assert (again.returncode, again.stderr) == (2, "keyport: Webhook endpoint not found\n")
