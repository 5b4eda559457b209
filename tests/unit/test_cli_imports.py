"""`keyport --help` answers without loading the server: commands import it lazily (cli.py)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support.server import KEYPORT

# What a command module must not load at import time; each command imports what it needs.
SERVER_MODULES = (
    "keyport.bootstrap",
    "keyport.config",
    "keyport.db",
    "keyport.redis",
    "keyport.services",
    "keyport.web",
    "sqlalchemy",
    "alembic",
    "redis",
    "litestar",
    "uvicorn",
    "asyncpg",
    "aiosqlite",
    "argon2",
    "msgspec",
    "httpx",
)


def test_importing_the_cli_loads_none_of_the_server() -> None:
    listed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, json, keyport.cli; print(json.dumps(list(sys.modules)))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = json.loads(listed.stdout)
    heavy = sorted(
        name
        for name in loaded
        if any(name == top or name.startswith(f"{top}.") for top in SERVER_MODULES)
    )
    assert heavy == [], (
        "keyport.cli loads server modules at import; import them inside the command "
        f"that needs them (the rule at the top of cli.py): {heavy}"
    )


def test_help_through_the_installed_script() -> None:
    shown = subprocess.run([KEYPORT, "--help"], capture_output=True, text=True, check=False)
    assert shown.returncode == 0, shown.stderr
    for command in ("serve", "init", "user", "key", "webhook", "db", "scan", "proxy-config"):
        assert f"  {command} " in shown.stdout, command
