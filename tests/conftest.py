"""Fixtures shared by all layers: real databases, a container, an HTTP client, test data."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from keyport.bootstrap import Container
from keyport.config import Settings
from keyport.domain.audit import Actor
from keyport.domain.clock import FixedClock
from keyport.domain.users import NewUser, Role, User
from keyport.web.app import create_app
from tests.support import databases
from tests.support.containers import FAST_PASSWORDS, TEST_SECRET_KEY, migrated


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """What a test hands over with `record_property("report: TITLE", text)` (the cluster
    run's figures), printed before pytest's closing line: reports travel from pytest-xdist's
    workers to this process with the test's result, module globals would not."""
    for reports in terminalreporter.stats.values():
        for report in reports:
            if getattr(report, "when", None) != "call":
                continue
            for name, value in getattr(report, "user_properties", ()):
                if isinstance(name, str) and name.startswith("report: "):
                    terminalreporter.section(name.removeprefix("report: "))
                    terminalreporter.write_line(str(value))


@pytest.hookimpl(tryfirst=True)  # before the fixture's own two parameters are applied
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test marked `sqlite_only` gets the SQLite variant of `database_url` alone: what it
    checks does not depend on the database (see the marker in pyproject.toml)."""
    marked = metafunc.definition.get_closest_marker("sqlite_only") is not None
    if marked and "database_url" in metafunc.fixturenames:
        # As a parametrize mark, which pytest lets override a fixture's own parameters.
        only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
        metafunc.definition.add_marker(only)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for the session, migrated once, dropped at the end."""
    url = databases.run_blocking(databases.create_postgres_database())
    try:
        yield url
    finally:
        databases.run_blocking(databases.drop_postgres_database(url))


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Every test that uses this runs once on an SQLite file and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'keyport.db'}"
        return
    url: str = request.getfixturevalue("postgres_url")
    await databases.truncate_all(url)
    yield url


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file migrated once per run: each test's container starts from a copy
    (migrating a new file costs ~0.2 s, and 400-odd tests take one)."""
    path = tmp_path_factory.mktemp("migrated") / "keyport.db"
    settings = Settings(database_url=f"sqlite+aiosqlite:///{path}", secret_key=TEST_SECRET_KEY)

    async def migrate() -> None:
        async with migrated(settings, FixedClock(datetime.now(UTC))):
            pass

    databases.run_blocking(migrate())
    with sqlite3.connect(path) as connection:  # everything into the file itself
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


@pytest.fixture
async def container(
    database_url: str, clock: FixedClock, migrated_sqlite: Path
) -> AsyncIterator[Container]:
    settings = Settings(database_url=database_url, secret_key=TEST_SECRET_KEY, **FAST_PASSWORDS)
    if database_url.startswith("sqlite"):
        file = Path(database_url.split("///", 1)[1])
        if not file.exists():
            shutil.copyfile(migrated_sqlite, file)
    async with migrated(settings, clock) as built:
        yield built


@pytest.fixture
async def client(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(container, run_background=False)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://keyport.test") as http:
        yield http


@dataclass
class Tenant:
    """A company with an owner, an admin, a member and one active key."""

    company_id: str
    owner: User
    admin: User
    member: User
    key: str
    key_id: str

    def auth(self, acting: User | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.key}"}
        if acting is not None:
            headers["x-meetergo-api-user-id"] = acting.id
        return headers


async def make_tenant(container: Container, name: str) -> Tenant:
    slug = name.lower().replace(" ", "")
    created = await container.companies.create_company(
        name,
        NewUser(f"owner@{slug}.test", "Olga", "Owner", "Europe/Berlin"),
        Actor.cli(),
        owner_password="owner-password-1",
    )
    company_id = created.company.id
    admin = await container.users.create_user(
        company_id,
        NewUser(f"admin@{slug}.test", "Ada", "Admin", "Europe/Berlin", role=Role.ADMIN),
        Actor.cli(),
        password="admin-password-1",
    )
    member = await container.users.create_user(
        company_id,
        NewUser(f"member@{slug}.test", "Max", "Member", "UTC"),
        Actor.cli(),
        password="member-password-1",
    )
    issued = await container.keys.issue_key(company_id, name="Test key", days=30, actor=Actor.cli())
    return Tenant(company_id, created.owner, admin, member, issued.key, issued.record.id)


@pytest.fixture
async def tenant(container: Container) -> Tenant:
    return await make_tenant(container, "Acme")


@pytest.fixture
async def other_tenant(container: Container) -> Tenant:
    return await make_tenant(container, "Globex")
