"""The operator's team commands: invite, set-role, transfer-ownership, reset-2fa."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from tests.support.server import cli_json, keyport_env, run_cli


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return keyport_env(
        f"sqlite:///{tmp_path / 'cli.db'}", KEYPORT_PUBLIC_URL="https://keys.example.com/"
    )


def roles(tmp_path: Path) -> dict[str, str]:
    with sqlite3.connect(tmp_path / "cli.db") as connection:
        rows = connection.execute("SELECT email, role FROM users WHERE deleted_at IS NULL")
        return dict(rows.fetchall())


def audit_actions(tmp_path: Path) -> list[str]:
    with sqlite3.connect(tmp_path / "cli.db") as connection:
        rows = connection.execute("SELECT action FROM audit_events WHERE actor_label = 'cli'")
        return [row[0] for row in rows]


def test_invite_prints_the_id_and_a_one_time_link(env: dict[str, str], tmp_path: Path) -> None:
    run_cli(env, "init", "--company", "Acme", "--owner-email", "o@acme.test")
    invited = cli_json(env, "user", "invite", "new@acme.test", "--role", "admin")

    assert set(invited) == {"id", "inviteUrl"}
    assert invited["inviteUrl"].startswith("https://keys.example.com/admin/invite/")
    token = invited["inviteUrl"].rsplit("/", 1)[1]
    with sqlite3.connect(tmp_path / "cli.db") as connection:
        dump = "\n".join(connection.iterdump())
    assert token not in dump
    assert roles(tmp_path)["new@acme.test"] == "admin"
    assert "user.invited" in audit_actions(tmp_path)


def test_set_role_and_transfer_ownership_keep_one_owner(
    env: dict[str, str], tmp_path: Path
) -> None:
    company = cli_json(env, "init", "--company", "Acme", "--owner-email", "o@acme.test")
    for email in ("a@acme.test", "m@acme.test"):
        cli_json(env, "user", "create", "--email", email, "--given-name", "A", "--family-name", "B")

    promoted = run_cli(env, "user", "set-role", "a@acme.test", "admin")
    moved = run_cli(
        env,
        "company",
        "transfer-ownership",
        "--to",
        "a@acme.test",
        "--company-id",
        company["companyId"],
    )

    assert promoted.stdout.strip() == "a@acme.test is now admin"
    assert "a@acme.test now owns the company" in moved.stdout
    assert roles(tmp_path) == {
        "o@acme.test": "admin",
        "a@acme.test": "owner",
        "m@acme.test": "member",
    }
    assert audit_actions(tmp_path)[-2:] == ["user.role_changed", "company.ownership_transferred"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("user", "set-role", "o@acme.test", "member"),
            "keyport: The owner's role changes only by transferring ownership\n",
        ),
        (("user", "set-role", "nobody@acme.test", "admin"), "keyport: No user with this email\n"),
        (
            ("company", "transfer-ownership", "--to", "o@acme.test"),
            "keyport: o@acme.test already owns the company\n",
        ),
        (
            ("user", "invite", "o@acme.test", "--role", "member"),
            "keyport: A user with this email already exists\n",
        ),
        (("user", "reset-2fa", "nobody@acme.test"), "keyport: No user with this email\n"),
    ],
)
def test_refusals_exit_2_with_one_line(
    env: dict[str, str], tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    run_cli(env, "init", "--company", "Acme", "--owner-email", "o@acme.test")
    result = run_cli(env, *args, check=False)

    assert (result.returncode, result.stderr) == (2, message)
    assert roles(tmp_path) == {"o@acme.test": "owner"}


def test_reset_2fa_says_what_it_did(env: dict[str, str], tmp_path: Path) -> None:
    run_cli(env, "init", "--company", "Acme", "--owner-email", "o@acme.test")
    result = run_cli(env, "user", "reset-2fa", "O@Acme.test")

    assert result.stdout.strip() == (
        "Two-factor sign-in is off for o@acme.test; their sessions have ended"
    )
    assert audit_actions(tmp_path)[-1] == "user.two_factor_reset"


def test_the_generated_server_secret_is_private_and_kept(
    env: dict[str, str], tmp_path: Path
) -> None:
    run_cli(env, "init", "--company", "Acme", "--owner-email", "o@acme.test")
    secret_file = tmp_path / "keyport.secret"
    first = secret_file.read_text()
    run_cli(env, "user", "invite", "x@acme.test", "--role", "member")

    assert stat.S_IMODE(os.stat(secret_file).st_mode) == 0o600
    assert secret_file.read_text() == first and len(first.strip()) >= 32
