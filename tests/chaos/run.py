"""One cluster run: set up, traffic and faults for a while, then every invariant counted.
tests/chaos/test_cluster.py runs it short; bench/cluster.py runs it long.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from keyport.bootstrap import Container
from keyport.domain.audit import Actor
from tests.chaos import invariants
from tests.chaos.cluster import HOSTS, Cluster
from tests.chaos.faults import Fault, Injector
from tests.chaos.workload import Connection, Workload
from tests.support.receiver import webhook_receiver
from tests.support.seed import add_webhook, create_keys, create_user, in_process, init_company

OWNER = ("owner@chaos.test", "owner-password-123")
VICTIM = ("victim@chaos.test", "victim-password-123")
LIMITED_RATE = 30  # requests a minute; its burst follows the default ratio: 60
LIMITED_BURST = 60
SIGN_IN_FAILURES = 10
SIGN_IN_WINDOW_MINUTES = 15.0
CACHE_TTL = 10.0
SETTINGS = {
    # Verification traffic is far busier than the default limit of a key: only the limited
    # key, and failed sign-ins, are limited here.
    "KEYPORT_RATE_LIMIT": "0",
    "KEYPORT_AUTH_FAILURE_LIMIT": "0",
    "KEYPORT_CACHE_TTL": str(CACHE_TTL),
    "KEYPORT_SIGN_IN_MAX_FAILURES": str(SIGN_IN_FAILURES),
    "KEYPORT_SIGN_IN_WINDOW_MINUTES": str(SIGN_IN_WINDOW_MINUTES),
    "KEYPORT_WEBHOOK_ALLOW_PRIVATE": "true",  # the receiver listens on loopback
    "KEYPORT_WEBHOOK_POLL_INTERVAL": "0.5",
    "KEYPORT_WEBHOOK_LEASE_SECONDS": "3",  # a killed delivery host hands over within 3 s
    "KEYPORT_SECURE_COOKIES": "false",  # the balancer speaks plain http on loopback
    "KEYPORT_PASSWORD_TIME_COST": "1",
    "KEYPORT_PASSWORD_MEMORY_COST": "64",
    "KEYPORT_REQUEST_LOG": "false",  # the CPU goes to the hosts' answers, not their logs
}
EVENTS = [
    "api_key.created",
    "api_key.deactivated",
    "api_key.revoked",
    "api_key.rotated",
    "personal_access_token.revoked",
]
TOKENS = 12  # the owner's personal access tokens, verified and revoked through /v1/tokens


def seed_data(env: dict[str, str], webhook_url: str) -> dict[str, Any]:
    init_company(env, "Chaos", OWNER[0], owner_password=OWNER[1])
    create_user(env, VICTIM[0], "Vic", "Tim", role="admin", password=VICTIM[1])
    stable = create_keys(env, 20, days=30)
    (limited,) = create_keys(env, 1, days=30, rate_limit=LIMITED_RATE)
    (manager,) = create_keys(env, 1, days=30, scopes=["*", "keys:manage"])
    add_webhook(env, webhook_url, EVENTS)
    return {
        "stable": stable,
        "limited": limited,
        "manager": manager,
        "tokens": issue_tokens(env, OWNER[0], TOKENS),
    }


def issue_tokens(env: dict[str, str], email: str, count: int) -> list[tuple[str, str]]:
    """`count` personal access tokens of the user `email`, as (id, token)."""

    async def work(c: Container) -> list[tuple[str, str]]:
        user = await c.tokens.user_by_email(email)
        issued = [
            await c.tokens.issue(user, name=f"chaos {n}", days=30, scopes=None, actor=Actor.cli())
            for n in range(count)
        ]
        return [(i.record.id, i.token) for i in issued]

    return in_process(env, work)


def final_keys(
    port: int, manager_key: str, ids: set[str], token_ids: set[str]
) -> dict[str, dict[str, Any]]:
    """Each key's (and token's) object as the cluster answers it once the faults are over."""
    connection, found = Connection(port), {}
    headers = {"authorization": f"Bearer {manager_key}"}
    for key_id in sorted(ids):
        kind = "tokens" if key_id in token_ids else "keys"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status, _, raw = connection.send("GET", f"/v1/{kind}/{key_id}", headers)
            if status in (200, 404):
                if status == 200:
                    found[key_id] = json.loads(raw)
                break
            time.sleep(0.2)
    return found


def _steady_state(cluster: Cluster, work: Workload, seconds: float) -> str:
    """Verifications a second through the balancer and what they cost PostgreSQL, measured
    over `seconds` without faults (docs/deployment.md quotes the long run's)."""
    if seconds <= 0:
        return ""
    cpu, commits = cluster.postgres_usage()
    answered, began = len(work.exchanges), time.monotonic()
    time.sleep(seconds)
    cpu_after, commits_after = cluster.postgres_usage()
    elapsed = time.monotonic() - began
    requests = (len(work.exchanges) - answered) / elapsed
    return (
        f"{requests:.0f} requests/s through the balancer for {elapsed:.0f} s; PostgreSQL "
        f"{(cpu_after - cpu) / elapsed:.1%} of one core, {(commits_after - commits) / elapsed:.1f} "
        "commits/s"
    )


def run(
    seconds: float, seed: int, schedule: list[Fault], folder: Path, *, steady: float = 0.0
) -> invariants.Report:
    report = invariants.Report(seed=seed, seconds=seconds)
    cluster = Cluster(folder, SETTINGS)
    try:
        cluster.start_stores()
        with webhook_receiver() as receiver:
            receiver.status = 204
            data = seed_data(cluster.env(), receiver.url)
            cluster.start_hosts()
            work = Workload(
                port=cluster.balancer_port,
                stable_keys=[k["key"] for k in data["stable"]],
                limited_key=(data["limited"]["id"], data["limited"]["key"]),
                manager_key=data["manager"]["key"],
                owner=OWNER,
                victim_email=VICTIM[0],
                seed=seed,
                tokens=data["tokens"],
            )
            injector = Injector(cluster, schedule, report.faults)
            work.start()
            injector.start(work.started)
            # The traffic goes on until the last fault has been undone and a while after.
            injector.wait(work.started + seconds)
            time.sleep(max(0.0, work.started + seconds - time.monotonic()))
            report.steady = _steady_state(cluster, work, steady)
            injector.stop()
            work.stop()
            if injector.error is not None:
                raise injector.error
            _check(report, cluster, work, injector, receiver.requests)
    finally:
        cluster.close()
    invariants.check_tracebacks(report, cluster.tracebacks())
    return report


def _check(
    report: invariants.Report,
    cluster: Cluster,
    work: Workload,
    injector: Injector,
    received: list[Any],
) -> None:
    invariants.check_answers(report, work, injector)
    invariants.check_refusals(report, work, injector, CACHE_TTL)
    invariants.check_rate_limit(report, work, injector, LIMITED_RATE, LIMITED_BURST, HOSTS)
    seconds = time.monotonic() - work.started
    limit = SIGN_IN_FAILURES * (1 + seconds / (SIGN_IN_WINDOW_MINUTES * 60))
    invariants.check_sign_ins(report, work, injector, int(limit))
    ids = {c.key_id for c in work.changes} | {c.new_key_id for c in work.changes if c.new_key_id}
    token_ids = {token_id for token_id, _ in work.tokens}
    final = final_keys(cluster.balancer_port, work.manager_key, ids, token_ids)
    invariants.check_changes(report, work.changes, work.unacknowledged, final)
    # Deliveries interrupted by a fault are picked up again once the worker's lease moves on.
    deadline = time.monotonic() + 40
    missing = invariants.check_events(report, work.changes, received)
    while missing and time.monotonic() < deadline:
        time.sleep(0.5)
        missing = invariants.check_events(report, work.changes, received)
    invariants.finish_events(report, work.changes, list(received), missing)
    invariants.check_audit(report, work.changes, cluster.database_url)
