"""Issue 5's propagation test: two server processes on one PostgreSQL, with and without Redis.

A client hammers both processes with a key while the key (or the user it acts as) is changed
through the first process. After the change returns, the changing process must accept no
request at all, and the other none that started more than one second later.
"""

from __future__ import annotations

import http.client
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.support import databases
from tests.support.seed import create_keys, create_user, init_company
from tests.support.server import ServerProcess, keyport_env, run_cli
from tests.support.waiting import wait_until

OWNER_EMAIL = "owner@acme.test"
OWNER_PASSWORD = "owner-password-1"
GRACE = 1.0  # seconds the other process may lag
SERVERS = ("first", "second")


@dataclass
class Cluster:
    first: ServerProcess
    second: ServerProcess
    env: dict[str, str]
    owner_id: str
    dashboard: httpx.Client = field(init=False)
    csrf: str = field(init=False)

    def sign_in(self) -> None:
        self.dashboard = httpx.Client(base_url=self.first.base_url, timeout=10)
        form = self.dashboard.get("/admin/login").text
        answer = self.dashboard.post(
            "/admin/login",
            data={
                "csrf_token": hidden(form, "csrf_token"),
                "email": OWNER_EMAIL,
                "password": OWNER_PASSWORD,
                "next": "",
            },
        )
        assert answer.status_code == 303, answer.text
        self.csrf = hidden(self.dashboard.get("/admin/api-keys").text, "csrf_token")


def hidden(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found is not None
    return found.group(1)


@pytest.fixture(scope="module", params=["postgres-notify", "redis-pubsub"])
def cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    url = databases.run_blocking(databases.create_postgres_database())
    extra = {"KEYPORT_REDIS_URL": databases.redis_url()} if request.param == "redis-pubsub" else {}
    # No rate limits: the clients here are far busier than any key may be.
    extra.update(KEYPORT_RATE_LIMIT="0", KEYPORT_AUTH_FAILURE_LIMIT="0")
    # The dashboard client is httpx over plain http, which keeps no Secure cookie (a browser
    # on 127.0.0.1 would): the documented way out for plain http.
    extra.update(KEYPORT_SECURE_COOKIES="false")
    # A slow log poll: only the push channel under test can make the deadline.
    env = keyport_env(url, KEYPORT_INVALIDATION_POLL_INTERVAL="30", **extra)
    owner_id = init_company(env, "Acme", OWNER_EMAIL, owner_password=OWNER_PASSWORD)["ownerId"]
    folder = tmp_path_factory.mktemp(request.param)
    first = ServerProcess(env, folder / "first.log").start()
    second = ServerProcess(env, folder / "second.log").start()
    built = Cluster(first, second, env, owner_id)
    try:
        built.sign_in()
        yield built
    finally:
        first.stop()
        second.stop()
        databases.run_blocking(databases.drop_postgres_database(url))


@dataclass
class Outcome:
    server: str
    started: float
    status: int


def hammer(
    cluster: Cluster, headers: dict[str, str], stop: threading.Event, outcomes: list[Outcome]
) -> list[threading.Thread]:
    def drive(name: str, port: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        while not stop.is_set():
            started = time.monotonic()
            connection.request("GET", "/v4/user/me", headers=headers)
            answer = connection.getresponse()
            answer.read()
            outcomes.append(Outcome(name, started, answer.status))
        connection.close()

    threads = [
        threading.Thread(target=drive, args=(name, server.port), daemon=True)
        for name, server in [("first", cluster.first), ("second", cluster.second)]
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    return threads


def change_under_load(
    cluster: Cluster, headers: dict[str, str], change: Callable[[], None], refused_status: int
) -> dict[str, float]:
    """Applies `change` while both processes serve; returns when each last said 200."""
    stop = threading.Event()
    outcomes: list[Outcome] = []
    threads = hammer(cluster, headers, stop, outcomes)

    def answered(server: str, status: int, after: float) -> bool:
        return any(
            o.server == server and o.status == status and o.started > after for o in list(outcomes)
        )

    def served_a_while_ago(server: str) -> bool:  # older than the 0.05 s margin below
        return any(
            o.server == server and o.status == 200 and o.started < time.monotonic() - 0.1
            for o in list(outcomes)
        )

    wait_until(lambda: all(served_a_while_ago(s) for s in SERVERS), "both processes serving")
    change()
    returned = time.monotonic()
    # Observed until each process refused a request started after the grace period.
    wait_until(
        lambda: all(answered(s, refused_status, returned + GRACE + 0.1) for s in SERVERS),
        "both processes refusing after the grace period",
    )
    stop.set()
    for thread in threads:
        thread.join(10)
    for server in ("first", "second"):
        before = [o for o in outcomes if o.server == server and o.started < returned - 0.05]
        assert before and all(o.status == 200 for o in before), f"{server} was not serving"
        after = [o for o in outcomes if o.server == server and o.started > returned + 0.2]
        assert after and after[-1].status == refused_status, f"{server} never refused"
    first_accepted = [
        o for o in outcomes if o.server == "first" and o.started >= returned and o.status == 200
    ]
    assert first_accepted == [], "the changing process accepted after the change returned"
    late = [
        o.started - returned
        for o in outcomes
        if o.server == "second" and o.status == 200 and o.started >= returned
    ]
    assert max(late, default=0.0) <= GRACE
    return {"second_last_accepted_after": max(late, default=0.0)}


def new_key(cluster: Cluster) -> tuple[str, str]:
    (created,) = create_keys(cluster.env, 1)
    return created["id"], created["key"]


def dashboard_post(cluster: Cluster, path: str) -> None:
    answer = cluster.dashboard.post(path, data={"csrf_token": cluster.csrf, "back_to": "list"})
    assert answer.status_code == 303, answer.text


def test_revoke_through_one_process_stops_both(cluster: Cluster) -> None:
    key_id, key = new_key(cluster)
    change_under_load(
        cluster,
        {"Authorization": f"Bearer {key}"},
        lambda: dashboard_post(cluster, f"/admin/api-keys/{key_id}/revoke"),
        401,
    )


def test_deactivate_through_one_process_stops_both(cluster: Cluster) -> None:
    key_id, key = new_key(cluster)
    change_under_load(
        cluster,
        {"Authorization": f"Bearer {key}"},
        lambda: dashboard_post(cluster, f"/admin/api-keys/{key_id}/deactivate"),
        401,
    )


def test_a_user_deleted_while_acting_stops_acting_on_both(cluster: Cluster) -> None:
    _, key = new_key(cluster)
    member = create_user(cluster.env, f"m{time.monotonic_ns()}@acme.test", "M", "B")
    as_member = {"Authorization": f"Bearer {key}", "x-meetergo-api-user-id": member.id}

    def delete_member() -> None:
        answer = httpx.delete(
            f"{cluster.first.base_url}/v4/user/{member.id}",
            headers={"Authorization": f"Bearer {key}", "x-meetergo-api-user-id": cluster.owner_id},
        )
        assert answer.status_code == 204, answer.text

    change_under_load(cluster, as_member, delete_member, 403)


def test_server_logs_hold_no_error(cluster: Cluster, tmp_path: Path) -> None:
    run_cli(cluster.env, "key", "list")
    for server in (cluster.first, cluster.second):
        assert "Traceback" not in server.output()
