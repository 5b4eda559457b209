"""Fixtures the end-to-end modules share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import databases
from tests.support.private_services import PrivateRedis


@pytest.fixture
def redis() -> Iterator[PrivateRedis]:
    """A Redis of the test's own, which it may stop and start (faults, load)."""
    server = PrivateRedis()
    try:
        server.start()
        yield server
    finally:
        server.destroy()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database for a served process, as a sync URL: a SQLite file, or PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'served.db'}"
        return
    databases.postgres_base_url()  # skips locally, fails under CI, when it is not set
    url = databases.run_blocking(databases.create_postgres_database())
    try:
        yield url
    finally:
        databases.run_blocking(databases.drop_postgres_database(url))
