"""What to run: the Starlette baseline and the Keyport servers with their scenarios.

Keyport is prepared through its own CLI on a fresh SQLite database; scenarios that cannot be
prepared are kept with a skip reason so the table still shows them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import _keyport
from _model import (
    HEALTHZ,
    ME,
    ME_AS_USER,
    ME_BAD_CHECKSUM,
    ME_WRONG_SECRET,
    STARLETTE_HELLO,
    Scenario,
    ServerPlan,
)
from _procs import HOST

BENCH_DIR = Path(__file__).resolve().parent
VENV_BIN = BENCH_DIR.parent / ".venv" / "bin"


def python_bin() -> str:
    venv_python = VENV_BIN / "python"
    return str(venv_python) if venv_python.exists() else sys.executable


def starlette_plan(workdir: Path) -> ServerPlan:
    uvicorn = [python_bin(), "-m", "uvicorn", "starlette_hello:app", "--app-dir", str(BENCH_DIR)]
    options = f"--host {HOST} --port {{port}} --workers 1 --loop uvloop --http httptools"
    argv = [*uvicorn, *options.split(), "--no-access-log", "--log-level", "warning"]
    scenario = Scenario(STARLETTE_HELLO, "/", 200)
    return ServerPlan("starlette", 1, argv, dict(os.environ), workdir, "/", [scenario])


def keyport_scenarios(
    keyport_bin: Path, workdir: Path, extra_env: dict[str, str]
) -> list[Scenario]:
    """Set up the bench database and derive the scenarios; those that cannot run say why."""
    healthz = Scenario(HEALTHZ, "/healthz", 200)
    try:
        setup = _keyport.set_up(keyport_bin, workdir, extra_env)
    except _keyport.KeyportError as error:
        print(f"Keyport set-up failed, only /healthz will be measured:\n{error}\n")
        reason = f"set-up failed: {one_line(error)}"
        names = (ME, ME_AS_USER, ME_WRONG_SECRET, ME_BAD_CHECKSUM)
        return [healthz, *(Scenario(name, "/v4/user/me", 0, skip_reason=reason) for name in names)]
    bearer = {"Authorization": f"Bearer {setup.key}"}
    as_user = {**bearer, "x-meetergo-api-user-id": setup.owner_id}
    bad_checksum = {"Authorization": f"Bearer {_keyport.bad_checksum_key(setup.key)}"}
    return [
        healthz,
        Scenario(ME, "/v4/user/me", 200, bearer),
        Scenario(ME_AS_USER, "/v4/user/me", 200, as_user),
        wrong_secret_scenario(setup, keyport_bin, workdir, extra_env),
        Scenario(ME_BAD_CHECKSUM, "/v4/user/me", 401, bad_checksum),
    ]


def wrong_secret_scenario(
    setup: _keyport.KeyportSetup, keyport_bin: Path, workdir: Path, extra_env: dict[str, str]
) -> Scenario:
    """Same key id, changed secret, valid checksum; or a key from another database if the
    checksum encoding is not recognised (both reach the digest lookup and miss)."""
    checksum = _keyport.find_checksum(setup.key)
    if checksum is not None:
        header = {"Authorization": f"Bearer {_keyport.wrong_secret_key(setup.key, checksum)}"}
        return Scenario(ME_WRONG_SECRET, "/v4/user/me", 401, header)
    print("Key checksum encoding not recognised: using a key from another database instead.")
    foreign_dir = workdir / "foreign"
    foreign_dir.mkdir(exist_ok=True)
    try:
        foreign = _keyport.set_up(keyport_bin, foreign_dir, extra_env)
    except _keyport.KeyportError as error:
        reason = f"no wrong-secret key could be built: {one_line(error)}"
        return Scenario(ME_WRONG_SECRET, "/v4/user/me", 401, skip_reason=reason)
    header = {"Authorization": f"Bearer {foreign.key}"}
    return Scenario(ME_WRONG_SECRET + " (foreign key)", "/v4/user/me", 401, header)


def keyport_plans(
    keyport_bin: Path, worker_counts: list[int], extra_env: dict[str, str], workdir: Path
) -> list[ServerPlan]:
    problem = _keyport.cli_problem(keyport_bin)
    if problem is not None:
        print(f"Keyport is not runnable ({problem}): running the Starlette scenario only.\n")
        return []
    workdir.mkdir()
    scenarios = keyport_scenarios(keyport_bin, workdir, extra_env)
    env = _keyport.server_env(_keyport.database_url(workdir), extra_env)
    return [
        ServerPlan("keyport", n, serve_argv(keyport_bin, n), env, workdir, "/healthz", scenarios)
        for n in worker_counts
    ]


def serve_argv(keyport_bin: Path, workers: int) -> list[str]:
    options = f"--host {HOST} --port {{port}} --workers {workers}"
    return [str(keyport_bin), "serve", *options.split()]


def one_line(error: Exception) -> str:
    """A multi-line error (command, then output) as its first and last lines."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return lines[0] if len(lines) < 2 else f"{lines[0]} … {lines[-1]}"
