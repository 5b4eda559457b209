"""Keyport through its CLI: is it runnable, a bench database with one key, invalid keys.

Keys look like `ak_live:<key-id>:<random><6-char base62 CRC32 of everything before it>`
(docs/contract.md §1). A "wrong secret" key must keep a valid checksum so that it reaches the digest
lookup; the checksum scheme is recognised by testing a few base62 encodings against the real
key, so this file does not import Keyport.
"""

from __future__ import annotations

import json
import os
import string
import subprocess
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHECKSUM_LENGTH = 6
ALPHABETS = (
    string.digits + string.ascii_uppercase + string.ascii_lowercase,
    string.digits + string.ascii_lowercase + string.ascii_uppercase,
    string.ascii_uppercase + string.ascii_lowercase + string.digits,
    string.ascii_lowercase + string.ascii_uppercase + string.digits,
)
Checksum = Callable[[str], str]


class KeyportError(RuntimeError):
    """The Keyport CLI is missing, failed, or printed something unexpected."""


@dataclass(frozen=True)
class KeyportSetup:
    database_url: str
    company_id: str
    owner_id: str
    key_id: str
    key: str
    token: str = ""  # the owner's personal access token, where the bench asked for one


def database_url(workdir: Path) -> str:
    return f"sqlite+aiosqlite:///{workdir / 'bench.db'}"


def server_env(db_url: str, extra: dict[str, str]) -> dict[str, str]:
    return {**os.environ, "KEYPORT_DATABASE_URL": db_url, **extra}


def cli_problem(keyport_bin: Path) -> str | None:
    """Why `keyport` cannot be used, or None when `keyport --help` lists serve/init/key."""
    if not keyport_bin.exists():
        return f"{keyport_bin} does not exist"
    try:
        done = subprocess.run(
            [str(keyport_bin), "--help"], capture_output=True, text=True, timeout=30, check=False
        )
    except subprocess.TimeoutExpired:
        return "`keyport --help` did not finish within 30s"
    if done.returncode != 0:
        return f"`keyport --help` exited with {done.returncode}: {_tail(done.stderr, 1)}"
    missing = [cmd for cmd in ("serve", "init", "key") if cmd not in done.stdout]
    return f"`keyport --help` lists no {', '.join(missing)} command" if missing else None


def command(keyport_bin: Path) -> list[str]:
    """How to run a `keyport`: an executable, or a Python script run by this interpreter."""
    if keyport_bin.suffix == ".py":
        return [sys.executable, str(keyport_bin.resolve())]
    return [str(keyport_bin)]


def run_cli_json(keyport_bin: Path, args: list[str], env: dict[str, str], cwd: Path) -> Any:
    argv = [*command(keyport_bin), *args]
    try:
        done = subprocess.run(
            argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
        )
    except subprocess.TimeoutExpired as error:
        raise KeyportError(f"`keyport {' '.join(args)}` did not finish within 120s") from error
    if done.returncode != 0:
        raise KeyportError(
            f"`keyport {' '.join(args)}` exited with {done.returncode}:\n{_tail(done.stderr)}"
        )
    return _last_json_object(done.stdout, " ".join(args))


def set_up(keyport_bin: Path, workdir: Path, extra_env: dict[str, str]) -> KeyportSetup:
    """A fresh SQLite database in workdir with one company, its owner and one 30-day key."""
    db_url = database_url(workdir)
    env = server_env(db_url, extra_env)
    init_args = ["init", "--company", "Bench", "--owner-email", "owner@bench.example", "--json"]
    company = run_cli_json(keyport_bin, init_args, env, workdir)
    created = run_cli_json(keyport_bin, ["key", "create", "--days", "30", "--json"], env, workdir)
    try:
        setup = KeyportSetup(
            database_url=db_url,
            company_id=str(company["companyId"]),
            owner_id=str(company["ownerId"]),
            key_id=str(created["id"]),
            key=str(created["key"]),
        )
    except (KeyError, TypeError) as error:
        raise KeyportError(f"unexpected JSON from keyport init/key create: {error!r}") from error
    _check_key_shape(setup)
    return setup


def find_checksum(key: str) -> Checksum | None:
    """The base62 CRC32 encoding that reproduces key's checksum, if one of ours does."""
    body, checksum = key[:-CHECKSUM_LENGTH], key[-CHECKSUM_LENGTH:]
    for alphabet in ALPHABETS:
        for little_endian in (False, True):
            scheme = _checksum_scheme(alphabet, little_endian)
            if scheme(body) == checksum:
                return scheme
    return None


def wrong_secret_key(key: str, checksum: Checksum) -> str:
    """Same key id, other random part, valid checksum: passes the checksum, fails the lookup."""
    prefix, key_id, secret = key.split(":", 2)
    random_part = secret[:-CHECKSUM_LENGTH]
    changed = "".join(_next_base62(ch) for ch in random_part[:8]) + random_part[8:]
    body = f"{prefix}:{key_id}:{changed}"
    return body + checksum(body)


def bad_checksum_key(key: str) -> str:
    """The real key with its last character replaced: the checksum no longer matches."""
    return key[:-1] + ("A" if key[-1] != "A" else "B")


def _checksum_scheme(alphabet: str, little_endian: bool) -> Checksum:
    def checksum(body: str) -> str:
        value = zlib.crc32(body.encode())
        digits = []
        for _ in range(CHECKSUM_LENGTH):
            value, digit = divmod(value, 62)
            digits.append(alphabet[digit])
        return "".join(digits if little_endian else reversed(digits))

    return checksum


def _next_base62(ch: str) -> str:
    alphabet = ALPHABETS[0]
    return alphabet[(alphabet.index(ch) + 1) % 62] if ch in alphabet else "a"


def _check_key_shape(setup: KeyportSetup) -> None:
    parts = setup.key.split(":", 2)
    if len(parts) != 3 or parts[0] != "ak_live" or parts[1] != setup.key_id:
        raise KeyportError("`keyport key create` returned a key not shaped ak_live:<id>:<secret>")


def _last_json_object(stdout: str, command: str) -> Any:
    try:
        return json.loads(stdout)
    except json.JSONDecodeError:
        pass
    for line in reversed(stdout.splitlines()):
        if line.strip().startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    raise KeyportError(f"`keyport {command}` printed no JSON object:\n{_tail(stdout)}")


def _tail(text: str, lines: int = 10) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])
