"""Test data for a served Keyport, made in this process through the services the `keyport`
CLI calls (build the container from the same environment, migrate, call, close).

Each CLI start costs seconds on a slow machine; where a test only needs the data, these do
what `keyport init`, `user create`, `key create`, `key deactivate|activate|revoke` and
`webhook add` do. The commands themselves are tested in tests/e2e/test_cli.py,
test_lifecycle_cli.py and test_team_cli.py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from keyport.bootstrap import Container, build_container
from keyport.cli import issued_key_json
from keyport.config import Settings
from keyport.domain.audit import Actor
from keyport.domain.users import NewUser, Role, User
from tests.support.databases import run_blocking
from tests.support.server import ServerProcess, keyport_env

T = TypeVar("T")


def in_process(env: dict[str, str], work: Callable[[Container], Awaitable[T]]) -> T:
    """Runs `work` as a CLI command would: same settings, database migrated first."""

    async def main() -> T:
        container = build_container(Settings.from_env(env))
        try:
            await container.migrate()
            return await work(container)
        finally:
            await container.close()

    return run_blocking(main())


def init_company(
    env: dict[str, str],
    company: str,
    owner_email: str,
    *,
    owner_password: str | None = None,
    owner_given_name: str = "Account",
    owner_family_name: str = "Owner",
) -> dict[str, str]:
    """Like `keyport init --json`: {"companyId": ..., "ownerId": ...}."""
    owner = NewUser(owner_email, owner_given_name, owner_family_name, "UTC")

    async def work(c: Container) -> dict[str, str]:
        created = await c.companies.create_company(
            company, owner, Actor.cli(), owner_password=owner_password
        )
        return {"companyId": created.company.id, "ownerId": created.owner.id}

    return in_process(env, work)


def create_user(
    env: dict[str, str],
    email: str,
    given_name: str,
    family_name: str,
    *,
    role: str = "member",
    timezone: str = "Europe/Berlin",
    password: str | None = None,
    company_id: str | None = None,
) -> User:
    """Like `keyport user create` (in the only company unless `company_id` names one)."""
    new_user = NewUser(email, given_name, family_name, timezone, role=Role(role))

    async def work(c: Container) -> User:
        company = await c.companies.resolve_company(company_id)
        return await c.users.create_user(company.id, new_user, Actor.cli(), password=password)

    return in_process(env, work)


def create_keys(
    env: dict[str, str],
    count: int,
    *,
    days: int = 5,
    name: str | None = None,
    company_id: str | None = None,
    **options: Any,
) -> list[dict[str, Any]]:
    """`count` keys like `keyport key create --days 5 --json` (`options`: issue_key's, e.g.
    rate_limit, scopes, allowed_ips), in the only company unless `company_id` names one:
    each as that command prints it (id, key, name, expiresAt, scopes, allowedIps)."""

    async def work(c: Container) -> list[dict[str, Any]]:
        company = await c.companies.resolve_company(company_id)
        keys = []
        for _ in range(count):
            issued = await c.keys.issue_key(
                company.id, name=name, days=days, actor=Actor.cli(), **options
            )
            keys.append(issued_key_json(issued))
        return keys

    return in_process(env, work)


def change_key(env: dict[str, str], verb: str, key_id: str) -> None:
    """Like `keyport key deactivate|activate|revoke KEY_ID`."""

    async def work(c: Container) -> None:
        company = await c.keys.company_of_key(key_id)
        change = {
            "deactivate": c.keys.deactivate_key,
            "activate": c.keys.activate_key,
            "revoke": c.keys.revoke_key,
        }[verb]
        await change(company, key_id, Actor.cli())

    in_process(env, work)


def add_webhook(
    env: dict[str, str], url: str, events: list[str], *, company_id: str | None = None
) -> dict[str, str]:
    """Like `keyport webhook add URL --event ... --json`: {"id": ..., "secret": ...}."""

    async def work(c: Container) -> dict[str, str]:
        company = await c.companies.resolve_company(company_id)
        added = await c.webhooks.add_endpoint(company.id, url, events, Actor.cli())
        return {"id": added.endpoint.id, "secret": added.secret}

    return in_process(env, work)


@contextmanager
def served_with_one_key(folder: Path) -> Iterator[tuple[ServerProcess, str]]:
    """A served Keyport on an SQLite file in `folder`: one company, one key (the server and the
    key); stopped when the block ends."""
    env = keyport_env(f"sqlite:///{folder / 'keyport.db'}")
    init_company(env, "Acme", "o@acme.test")
    key: str = create_keys(env, 1)[0]["key"]
    server = ServerProcess(env, folder / "server.log").start()
    try:
        yield server, key
    finally:
        server.stop()
