"""One client venv per test session, one real Keyport for the package's modules."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from keyport.bootstrap import Container
from keyport.cli import issued_key_json
from keyport.domain.audit import Actor
from tests.support.client_venv import SERVERS, ClientVenv, make_client_venv
from tests.support.seed import create_user, in_process, init_company
from tests.support.server import ServerProcess, keyport_env


@pytest.fixture(scope="session")
def client_venv(tmp_path_factory: pytest.TempPathFactory) -> ClientVenv:
    return make_client_venv(tmp_path_factory.mktemp("client-venv"))


# The keys each app's tests use, by name: issue_key's options. Made all at once (each separate
# seeding costs a container start), a set per app, so that no app's test spends another's.
KEYS: dict[str, dict[str, Any]] = {
    "full": {},
    "reader": {"scopes": ["orders:read"]},
    "writer": {"scopes": ["orders:read", "orders:write"]},
    "stranger": {"scopes": ["billing:read"]},
    "inside": {"allowed_ips": ["127.0.0.0/8"]},
    "elsewhere": {"allowed_ips": ["192.0.2.0/24"]},
    "limited": {"rate_limit": 1},  # bursts to 2
    "doomed": {},  # deactivated by a test
    "spare": {},
}


@dataclass(frozen=True)
class Served:
    server: ServerProcess
    company_id: str
    owner_id: str
    member_id: str
    keys: dict[str, dict[str, dict[str, Any]]]  # app kind → name → `key create --json`


def _issue_all(env: dict[str, str], company_id: str) -> dict[str, dict[str, dict[str, Any]]]:
    async def work(c: Container) -> dict[str, dict[str, dict[str, Any]]]:
        issued: dict[str, dict[str, dict[str, Any]]] = {}
        for kind in SERVERS:
            issued[kind] = {}
            for name, options in KEYS.items():
                key = await c.keys.issue_key(
                    company_id, name=name, days=30, actor=Actor.cli(), **options
                )
                issued[kind][name] = issued_key_json(key)
        return issued

    return in_process(env, work)


@pytest.fixture(scope="package")
def keyport(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("keyport")
    env = keyport_env(
        f"sqlite:///{folder / 'keyport.db'}",
        # The apps run on this host: Keyport believes the client address they name.
        KEYPORT_TRUSTED_PROXIES="127.0.0.1,::1",
        KEYPORT_AUTH_FAILURE_LIMIT="100000",  # every test's failures come from one address
        KEYPORT_REQUEST_LOG="false",
    )
    company = init_company(env, "Acme", "owner@acme.test")
    member = create_user(env, "member@acme.test", "Mem", "Ber")
    keys = _issue_all(env, company["companyId"])
    server = ServerProcess(env, folder / "keyport.log").start()
    try:
        yield Served(server, company["companyId"], company["ownerId"], member.id, keys)
    finally:
        server.stop()
