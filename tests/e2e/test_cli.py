"""The `keyport` command as an operator uses it: JSON output, one-line errors, exit codes.

The commands run in-process (`run_cli`, Click's runner on the real entry point); the tests
named `..._through_the_installed_script` run the `keyport` script as a process, for what
only a process shows: its exit status, and stdout and stderr as separate streams.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.support.server import cli_json, keyport_env, run_cli, run_cli_process


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return keyport_env(f"sqlite:///{tmp_path / 'cli.db'}")


def count_rows(tmp_path: Path, table: str) -> int:
    with sqlite3.connect(tmp_path / "cli.db") as connection:
        return int(connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_init_user_and_key_commands_print_json(env: dict[str, str]) -> None:
    created = cli_json(env, "init", "--company", "Acme", "--owner-email", "o@acme.test")
    assert set(created) == {"companyId", "ownerId"}
    user = cli_json(
        env,
        "user",
        "create",
        "--email",
        "Ann@Acme.test",
        "--given-name",
        "Ann",
        "--family-name",
        "Lee",
        "--role",
        "admin",
    )
    assert (user["email"], user["isAdmin"], user["companyId"], user["timezone"]) == (
        "ann@acme.test",
        True,
        created["companyId"],
        "Europe/Berlin",
    )
    key = cli_json(env, "key", "create", "--name", "CI", "--days", "7")
    assert set(key) == {"id", "key", "name", "expiresAt", "scopes", "allowedIps"}
    assert key["key"].startswith(f"ak_live:{key['id']}:") and key["name"] == "CI"
    listed = cli_json(env, "key", "list")
    assert [(k["id"], k["state"]) for k in listed] == [(key["id"], "active")]
    assert "key" not in listed[0] and key["key"].split(":")[2] not in str(listed)


def test_key_create_through_the_installed_script_warns_on_stderr_it_is_shown_once(
    env: dict[str, str],
) -> None:
    run_cli(env, "init", "--company", "Acme", "--owner-email", "o@acme.test")
    result = run_cli_process(env, "key", "create", "--days", "30")
    assert result.stdout.splitlines()[1].startswith("ak_live:")
    assert result.stderr == "Copy it now: it will not be shown again.\n"


def test_bad_input_through_the_installed_script_exits_2_with_one_line(
    env: dict[str, str],
) -> None:
    result = run_cli_process(env, "key", "create", "--days", "ten", check=False)
    assert (result.returncode, result.stdout, result.stderr) == (
        2,
        "",
        "keyport: Invalid value for '--days': 'ten' is not a valid integer.\n",
    )


def test_lifecycle_commands(env: dict[str, str]) -> None:
    run_cli(env, "init", "--company", "Acme", "--owner-email", "o@acme.test")
    key_id = cli_json(env, "key", "create", "--days", "3")["id"]
    assert (
        run_cli(env, "key", "deactivate", key_id).stdout.strip()
        == f"API key {key_id} is now inactive"
    )
    assert (
        run_cli(env, "key", "activate", key_id).stdout.strip() == f"API key {key_id} is now active"
    )
    assert (
        run_cli(env, "key", "revoke", key_id).stdout.strip() == f"API key {key_id} is now revoked"
    )
    again = run_cli(env, "key", "activate", key_id, check=False)
    assert (again.returncode, again.stderr) == (
        2,
        "keyport: API key is revoked and can never be used again\n",
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["key", "create", "--days", "91"],
            "keyport: --days must be between 1 and 90 days.\n",
        ),
        (
            ["key", "create", "--days", "0"],
            "keyport: --days must be between 1 and 90 days.\n",
        ),
        (
            ["key", "create", "--days", "ten"],
            "keyport: Invalid value for '--days': 'ten' is not a valid integer.\n",
        ),
        (
            ["key", "create", "--days", "5", "--name", "x" * 101],
            "keyport: --name must be at most 100 characters.\n",
        ),
        (["key", "revoke", "not-a-key"], "keyport: API key not found\n"),
        (
            ["key", "create", "--days", "5", "--company-id", "nope"],
            "keyport: No company with id nope\n",
        ),
        (
            ["user", "create", "--email", "bad", "--given-name", "A", "--family-name", "B"],
            "keyport: --email must be a valid email address.\n",
        ),
        (
            ["init", "--company", "Other", "--owner-email", "o@acme.test"],
            "keyport: A user with this email already exists\n",
        ),
        (["key", "create"], "keyport: Missing option '--days'.\n"),
        (  # issue 33, item 8: every bad field at once, each by its option
            ["key", "create", "--days", "91", "--scope", "Orders", "--rate-limit", "0"],
            "keyport: --days must be between 1 and 90 days."
            " --rate-limit must be a whole number of requests a minute from 1 to 1000000."
            " --scope 'Orders' is not a scope: use * or name:action.\n",
        ),
        (
            ["key", "rotate", "00000000-0000-4000-8000-000000000000", "--grace", "soon"],
            "keyport: --grace 'soon' is not a duration: use 30s, 15m, 1h, 7d or seconds.\n",
        ),
    ],
)
def test_bad_input_exits_2_with_one_clear_line_and_writes_nothing(
    env: dict[str, str], tmp_path: Path, args: list[str], message: str
) -> None:
    run_cli(env, "init", "--company", "Acme", "--owner-email", "o@acme.test")
    before = [count_rows(tmp_path, t) for t in ("companies", "users", "api_keys", "audit_events")]
    result = run_cli(env, *args, check=False)
    assert (result.returncode, result.stderr, result.stdout) == (2, message, "")
    after = [count_rows(tmp_path, t) for t in ("companies", "users", "api_keys", "audit_events")]
    assert after == before


def test_company_id_is_needed_once_there_are_two(env: dict[str, str]) -> None:
    run_cli(env, "init", "--company", "Acme", "--owner-email", "o@acme.test")
    second = cli_json(env, "init", "--company", "Globex", "--owner-email", "o@globex.test")
    result = run_cli(env, "key", "create", "--days", "5", check=False)
    assert (result.returncode, result.stderr) == (
        2,
        "keyport: --company-id is needed: several companies exist.\n",
    )
    key = cli_json(env, "key", "create", "--days", "5", "--company-id", second["companyId"])
    assert key["key"].startswith("ak_live:")


def test_no_company_yet_is_a_clear_error(env: dict[str, str], tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / "cli.db").close()  # a database, empty: migrated on first use
    result = run_cli(env, "key", "list", check=False)
    assert (result.returncode, result.stderr) == (
        2,
        "keyport: No company exists yet: run `keyport init` first\n",
    )


def test_db_upgrade_creates_the_schema(env: dict[str, str], tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / "cli.db").close()  # an empty file (or PostgreSQL database)
    assert run_cli(env, "db", "upgrade").stdout == "Database is up to date.\n"
    assert count_rows(tmp_path, "api_keys") == 0
    assert run_cli(env, "db", "upgrade").returncode == 0


def test_bad_database_url_is_one_line(tmp_path: Path) -> None:
    env = keyport_env("mysql://nowhere/db")
    result = run_cli(env, "key", "list", check=False)
    assert result.returncode == 2
    assert result.stderr.startswith("keyport: KEYPORT_DATABASE_URL: unsupported database URL")
    assert len(result.stderr.splitlines()) == 1


def test_scan_finds_real_keys_only(env: dict[str, str], tmp_path: Path) -> None:
    run_cli(env, "init", "--company", "Acme", "--owner-email", "o@acme.test")
    key = cli_json(env, "key", "create", "--days", "5")
    leaked = tmp_path / "leak.txt"
    fake = key["key"][:-1] + ("A" if key["key"][-1] != "A" else "B")
    leaked.write_text(f"ok\nexport TOKEN={key['key']}\n{fake}\n")
    result = run_cli(env, "scan", str(leaked), check=False)
    assert result.returncode == 1
    assert result.stdout == f"{leaked}:2: Keyport API key {key['id']}\n"


def test_a_key_gets_its_own_rate_limit_and_can_go_back_to_the_default(
    env: dict[str, str], tmp_path: Path
) -> None:
    run_cli(env, "init", "--company", "Acme", "--owner-email", "o@acme.test")
    key = cli_json(env, "key", "create", "--days", "7", "--rate-limit", "30")
    assert [k["rateLimit"] for k in cli_json(env, "key", "list")] == [30]
    changed = run_cli(env, "key", "set-limit", key["id"], "1000").stdout.strip()
    assert changed == f"API key {key['id']} is now limited to 1000 requests a minute"
    back = run_cli(env, "key", "set-limit", key["id"], "default").stdout.strip()
    assert back == f"API key {key['id']} is now limited to the default"
    assert [k["rateLimit"] for k in cli_json(env, "key", "list")] == [None]
    assert count_rows(tmp_path, "audit_events WHERE action = 'api_key.rate_limit_set'") == 2
    for bad in ["0", "-5", "1000001", "lots"]:
        refused = run_cli(env, "key", "set-limit", key["id"], bad, check=False)
        assert refused.returncode == 2 and refused.stderr.startswith("keyport: "), bad
        assert len(refused.stderr.strip().splitlines()) == 1


def test_scopes_and_allowed_networks_are_set_at_creation_and_changed_later(
    env: dict[str, str],
) -> None:
    run_cli(env, "init", "--company", "Acme", "--owner-email", "owner@acme.test")
    created = cli_json(
        env,
        *("key", "create", "--days", "5", "--scope", "orders:read", "--scope", "users:read"),
        *("--allow-ip", "10.0.0.0/8", "--allow-ip", "2001:db8::/32"),
    )
    assert created["scopes"] == ["orders:read", "users:read"]
    assert created["allowedIps"] == ["10.0.0.0/8", "2001:db8::/32"]
    said = run_cli(env, "key", "set-scopes", created["id"], "*").stdout
    assert said == f"API key {created['id']} now holds: Full access\n"
    cleared = run_cli(env, "key", "set-allowed-ips", created["id"]).stdout
    assert cleared == f"API key {created['id']} may now be used from: anywhere\n"
    listed = cli_json(env, "key", "list")
    assert (listed[0]["scopes"], listed[0]["allowedIps"]) == (["*"], [])
    refused = run_cli(env, "key", "set-allowed-ips", created["id"], "10.0.0.1/8", check=False)
    assert refused.returncode == 2
    assert "10.0.0.1/8 has host bits set" in refused.stderr


def test_proxy_config_prints_a_file_or_one_clear_line(env: dict[str, str]) -> None:
    printed = run_cli(
        env,
        *("proxy-config", "caddy", "--listen", "127.0.0.1:8080"),
        *("--keyport", "http://127.0.0.1:8000", "--upstream", "http://127.0.0.1:9000"),
    )
    assert printed.stdout.startswith("# Generated by: keyport proxy-config caddy --listen")
    refused = run_cli(
        env,
        *("proxy-config", "nginx", "--listen", "127.0.0.1:8080"),
        *("--keyport", "http://k", "--upstream", "http://u", "--scope", "/a;b=x:y"),
        check=False,
    )
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1


def test_version_and_help_with_examples(env: dict[str, str]) -> None:
    """Issue 33, item 10: `keyport --version`, and help that shows how commands are used."""
    from importlib.metadata import version

    assert run_cli(env, "--version").stdout == f"keyport {version('keyport')}\n"
    shown = run_cli(env, "--help").stdout
    assert "Examples:\n    keyport serve" in shown
    assert 'keyport key create --name "CRM sync" --days 30 --scope users:read' in shown
    assert "KEYPORT_DATA_DIR, else $XDG_DATA_HOME/keyport, else ~/.local/share/keyport" in shown
    assert "..." not in shown.split("Commands:")[1]  # no command's line cut short
