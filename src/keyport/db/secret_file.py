"""The server secret of a zero-setup installation: generated once, kept in a private file.

With `KEYPORT_SECRET_KEY` unset, Keyport keeps a generated secret in `keyport.secret` beside
the SQLite database (or in the data directory for PostgreSQL), readable only by its owner.
Several hosts must share one secret: set `KEYPORT_SECRET_KEY` (or `KEYPORT_SECRET_KEY_FILE`)
to the same value on all of them.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from sqlalchemy.engine import make_url

from keyport.db.engine import is_sqlite

FILE_NAME = "keyport.secret"


def default_secret_path(database_url: str, data_directory: Path) -> Path:
    if is_sqlite(database_url):
        database = make_url(database_url).database
        if database and database != ":memory:":
            return Path(database).resolve().parent / FILE_NAME
    return data_directory / FILE_NAME


def sqlite_file(database_url: str) -> Path | None:
    """The file of an SQLite database URL (None for PostgreSQL or an in-memory database)."""
    if not is_sqlite(database_url):
        return None
    database = make_url(database_url).database
    return Path(database).absolute() if database and database != ":memory:" else None


def create_private_directory(path: Path) -> bool:
    """`path` and its missing parents, readable by the owner alone (0700); False if it
    existed already (then it is left as it is: its owner chose)."""
    if path.is_dir():
        return False
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)  # whatever the umask
    return True


def load_or_create_secret(path: Path) -> str:
    """The secret in `path`; created (mode 0600) if the file does not exist yet.

    Written to a private temporary file first and linked into place, so that processes
    starting together never read a half-written secret: one link wins, all read its file.
    """
    if not path.exists():
        create_private_directory(path.parent)
        draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "w") as file:
                file.write(secrets.token_urlsafe(48) + "\n")
            with contextlib.suppress(FileExistsError):
                os.link(draft, path)
        finally:
            draft.unlink()
    return _read(path)


def _read(path: Path) -> str:
    secret = path.read_text().strip()
    if len(secret) < 32:
        raise ValueError(f"{path}: the server secret is missing or too short")
    return secret
