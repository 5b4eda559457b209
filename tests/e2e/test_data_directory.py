"""Where Keyport keeps its data (issue 33, items 1 and 6): one data directory, mode 0700,
holding the SQLite database and the generated server secret — KEYPORT_DATA_DIR, else
$XDG_DATA_HOME/keyport, else ~/.local/share/keyport — never the working directory. Only
`keyport init` and `keyport serve` create it; any other command that finds no database exits
2, says where it looked and how to point it elsewhere, and creates nothing.

The commands run in-process (Click's runner on the real entry point) with exactly the given
environment; HOME is a temporary folder, so nothing here touches the real home.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.support.server import cli_json, run_cli

FAST = {"KEYPORT_PASSWORD_TIME_COST": "1", "KEYPORT_PASSWORD_MEMORY_COST": "64"}
POINT_IT = (
    "Create one there with `keyport init` or `keyport serve`, or point to yours with "
    "KEYPORT_DATA_DIR=DIR (the folder holding keyport.db) or KEYPORT_DATABASE_URL=URL.\n"
)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "home").mkdir()
    return tmp_path / "home"


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working directory: a folder of its own, which must stay empty."""
    folder = tmp_path / "work"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def environment(home: Path, **settings: str) -> dict[str, str]:
    """This process's environment without KEYPORT_* or XDG_DATA_HOME, HOME set to `home`."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("KEYPORT_") and name != "XDG_DATA_HOME"
    }
    return env | {"HOME": str(home)} | FAST | settings


def everything_in(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


def test_init_creates_the_data_directory_privately_and_every_command_finds_it(
    home: Path, elsewhere: Path
) -> None:
    env = environment(home)
    created = run_cli(env, "init", "--company", "Acme", "--owner-email", "o@acme.test", "--json")
    data = home / ".local" / "share" / "keyport"

    assert created.stderr == f"Keyport data (database and server secret): {data} (created)\n"
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert sorted(p.name for p in data.iterdir() if not p.name.endswith(("-wal", "-shm"))) == [
        "keyport.db",
        "keyport.secret",
    ]
    assert stat.S_IMODE((data / "keyport.secret").stat().st_mode) == 0o600
    key = cli_json(env, "key", "create", "--days", "5")
    assert [k["id"] for k in cli_json(env, "key", "list")] == [key["id"]]
    assert everything_in(elsewhere) == []


@pytest.mark.parametrize(
    ("settings", "where", "why"),
    [
        ({}, "home/.local/share/keyport/keyport.db", "the default data directory"),
        ({"XDG_DATA_HOME": "{tmp}/xdg"}, "xdg/keyport/keyport.db", "the default data directory"),
        (
            {"KEYPORT_DATA_DIR": "{tmp}/data"},
            "data/keyport.db",
            "the data directory, KEYPORT_DATA_DIR",
        ),
        (
            {"KEYPORT_DATABASE_URL": "sqlite:///{tmp}/db/keys.db"},
            "db/keys.db",
            "KEYPORT_DATABASE_URL",
        ),
    ],
    ids=["home", "xdg", "data-dir", "database-url"],
)
@pytest.mark.parametrize(
    "command",
    [
        ["key", "list"],
        ["key", "create", "--days", "5"],
        ["user", "invite", "new@acme.test", "--role", "member"],
        ["webhook", "list"],
        ["db", "upgrade"],
    ],
    ids=lambda command: "-".join(command[:2]),
)
def test_a_command_that_finds_no_database_exits_2_says_where_and_creates_nothing(
    tmp_path: Path,
    home: Path,
    elsewhere: Path,
    settings: dict[str, str],
    where: str,
    why: str,
    command: list[str],
) -> None:
    env = environment(home, **{k: v.format(tmp=tmp_path) for k, v in settings.items()})
    before = everything_in(tmp_path)

    result = run_cli(env, *command, check=False)

    assert (result.returncode, result.stdout) == (2, "")
    assert (
        result.stderr == f"keyport: no Keyport database at {tmp_path / where} ({why}). {POINT_IT}"
    )
    assert everything_in(tmp_path) == before  # no folder, no database, no secret


def test_the_data_directory_follows_keyport_data_dir_and_xdg_data_home(
    tmp_path: Path, home: Path, elsewhere: Path
) -> None:
    xdg = environment(home, XDG_DATA_HOME=str(tmp_path / "xdg"))
    chosen = environment(home, KEYPORT_DATA_DIR=str(tmp_path / "chosen"))
    for env in (xdg, chosen):
        run_cli(env, "init", "--company", "Acme", "--owner-email", "o@acme.test")

    assert (tmp_path / "xdg" / "keyport" / "keyport.db").exists()
    assert (tmp_path / "chosen" / "keyport.db").exists()
    assert not (home / ".local").exists() and everything_in(elsewhere) == []
    # A relative XDG_DATA_HOME is ignored, as the XDG spec says.
    relative = environment(home, XDG_DATA_HOME="relative")
    assert "home/.local/share/keyport" in run_cli(relative, "key", "list", check=False).stderr


def test_keyport_database_url_overrides_the_data_directory(tmp_path: Path, home: Path) -> None:
    env = environment(
        home,
        KEYPORT_DATABASE_URL=f"sqlite:///{tmp_path / 'own.db'}",
        KEYPORT_DATA_DIR=str(tmp_path / "unused"),
    )
    created = run_cli(env, "init", "--company", "Acme", "--owner-email", "o@acme.test")

    assert created.stderr == ""  # nothing of it lives in the data directory
    assert (tmp_path / "own.db").exists() and (tmp_path / "keyport.secret").exists()
    assert not (tmp_path / "unused").exists()
