"""`keyport.client` against real served processes; rotation grace on two processes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from keyport.bootstrap import build_container
from keyport.client import (
    AsyncKeyport,
    ConflictError,
    CreatedKey,
    Key,
    Keyport,
    KeyportError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from keyport.config import Settings
from keyport.domain.audit import Actor
from tests.support import databases
from tests.support.seed import create_user, init_company
from tests.support.server import ServerProcess, keyport_env

GRACE = 4.0  # seconds


@dataclass
class Served:
    first: ServerProcess
    second: ServerProcess
    manager_key: str
    plain_key: str
    member_id: str


def _keys(database: str, company_id: str) -> tuple[str, str]:
    async def work() -> tuple[str, str]:
        container = build_container(Settings(database_url=database))
        try:
            manager = await container.keys.issue_key(
                company_id,
                name="manager",
                days=30,
                actor=Actor.cli(),
                scopes=["keys:manage", "*"],
            )
            plain = await container.keys.issue_key(
                company_id, name="plain", days=30, actor=Actor.cli()
            )
            return manager.key, plain.key
        finally:
            await container.close()

    return databases.run_blocking(work())


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("client")
    database = f"sqlite+aiosqlite:///{folder / 'client.db'}"
    env = keyport_env(database, KEYPORT_RATE_LIMIT="0", KEYPORT_REQUEST_LOG="false")
    company = init_company(env, "Acme", "o@acme.test")
    member = create_user(env, "m@acme.test", "M", "Ember")
    manager_key, plain_key = _keys(database, company["companyId"])
    first = ServerProcess(env, folder / "first.log").start()
    second = ServerProcess(env, folder / "second.log").start()
    try:
        yield Served(first, second, manager_key, plain_key, member.id)
    finally:
        first.stop()
        second.stop()


def test_the_sync_client_does_every_operation(served: Served) -> None:
    with Keyport(served.first.base_url, served.manager_key) as keyport:
        created = keyport.create_key(7, name="CI", scopes=["users:read"], rate_limit=60)
        assert isinstance(created, CreatedKey) and created.key.startswith("ak_live:")
        assert created.key not in repr(created)
        assert (created.name, created.status, created.scopes, created.rate_limit) == (
            "CI",
            "active",
            ["users:read"],
            60,
        )
        assert keyport.get_key(created.id) == Key(
            **{f: getattr(created, f) for f in Key.__dataclass_fields__}
        )
        updated = keyport.update_key(created.id, name="CI 2", allowed_ips=["10.0.0.0/8"])
        assert (updated.name, updated.allowed_ips) == ("CI 2", ["10.0.0.0/8"])
        assert keyport.deactivate_key(created.id).status == "deactivated"
        with pytest.raises(ConflictError) as twice:
            keyport.deactivate_key(created.id)
        assert (twice.value.status_code, twice.value.message) == (
            409,
            "API key is already deactivated",
        )
        assert keyport.activate_key(created.id).status == "active"
        rotated = keyport.rotate_key(created.id, grace_period_seconds=60)
        assert rotated.name == "CI 2" and rotated.id != created.id
        assert created.id not in {k.id for k in keyport.list_keys(status="revoked")}
        assert keyport.revoke_key(created.id).status == "revoked"
        assert [k.id for k in keyport.list_keys(status="revoked")] == [created.id]
        assert {rotated.id, created.id} <= {k.id for k in keyport.list_keys()}
        with pytest.raises(NotFoundError):
            keyport.get_key("00000000-0000-4000-8000-000000000000")
        with pytest.raises(ValidationError) as invalid:
            keyport.create_key(0)
        assert invalid.value.errors[0]["field"] == "expiresInDays"
        with pytest.raises(TypeError):
            keyport.update_key(created.id, colour="red")


def test_authorize_answers_who_the_key_acts_as(served: Served) -> None:
    with Keyport(served.first.base_url, served.plain_key) as plain:
        answer = plain.authorize(["users:read"])
        assert (answer.user_role, answer.scopes) == ("owner", ["*"])
        with pytest.raises(PermissionDeniedError) as missing:
            plain.authorize(["keys:manage"])
        assert missing.value.message == "Insufficient scope: requires keys:manage"
    with Keyport(served.first.base_url, served.manager_key, user_id=served.member_id) as member:
        assert member.authorize().user_id == served.member_id


def test_errors_carry_status_and_message(served: Served) -> None:
    with Keyport(served.first.base_url, served.plain_key) as plain:
        with pytest.raises(PermissionDeniedError) as scope:
            plain.list_keys()
        assert scope.value.message == "Insufficient scope: requires keys:manage"
    with Keyport(served.first.base_url, served.manager_key, user_id=served.member_id) as member:
        with pytest.raises(PermissionDeniedError) as role:
            member.create_key(5)
        assert (role.value.status_code, role.value.message) == (
            403,
            "Only owners and admins can manage API keys",
        )
    with Keyport(served.first.base_url, "ak_live:nonsense") as nobody:
        with pytest.raises(KeyportError) as unknown:
            nobody.get_key("x")
        assert unknown.value.status_code == 401


async def test_the_async_client_mirrors_it(served: Served) -> None:
    async with AsyncKeyport(served.second.base_url, served.manager_key) as keyport:
        created = await keyport.create_key(3, name="async")
        assert (await keyport.get_key(created.id)).name == "async"
        rotated = await keyport.rotate_key(created.id)
        assert (await keyport.get_key(created.id)).status == "expired"
        async with AsyncKeyport(served.second.base_url, rotated.key) as itself:
            again = await itself.rotate_self()
        assert (await keyport.get_key(rotated.id)).status == "expired"
        assert (await keyport.get_key(again.id)).status == "active"


def _status(base_url: str, key: str) -> int:
    answer = httpx.get(
        f"{base_url}/v4/user/me", headers={"Authorization": f"Bearer {key}"}, timeout=10
    )
    return answer.status_code


def test_the_old_key_works_on_both_processes_until_the_grace_ends(served: Served) -> None:
    with Keyport(served.first.base_url, served.manager_key) as keyport:
        old = keyport.create_key(5, name="graceful")
        assert _status(served.second.base_url, old.key) == 200  # cached on the second
        started = time.monotonic()
        new = keyport.rotate_key(old.id, grace_period_seconds=int(GRACE))
    for server in (served.first, served.second):
        assert _status(server.base_url, old.key) == 200
        assert _status(server.base_url, new.key) == 200
    deadline = started + GRACE + 15
    ended: dict[str, float] = {}
    while len(ended) < 2 and time.monotonic() < deadline:
        for server in (served.first, served.second):
            if server.base_url not in ended and _status(server.base_url, old.key) == 401:
                ended[server.base_url] = time.monotonic() - started
        time.sleep(0.1)
    assert len(ended) == 2, ended
    # Neither process refused it before the grace ended; both did within 2 s after it.
    assert all(GRACE - 0.5 <= after <= GRACE + 2 for after in ended.values()), ended
    answer = httpx.get(
        f"{served.second.base_url}/v4/user/me", headers={"Authorization": f"Bearer {old.key}"}
    )
    assert answer.json()["message"] == "API key has expired"
