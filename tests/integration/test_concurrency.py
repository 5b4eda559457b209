"""Changes racing each other and racing traffic, on SQLite and PostgreSQL: no deadlock, no lost
or invented audit event, no key in an impossible state, and the database's own constraints
backing the rules when the services' checks are raced past.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Coroutine
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from keyport.bootstrap import Container
from keyport.db.tables import api_keys
from keyport.db.uow import SqlUnitOfWorkFactory
from keyport.domain.audit import Actor, AuditEvent
from keyport.domain.errors import Conflict, InvalidKeyTransition, NotFound, PermissionDenied
from keyport.domain.keys import KeyStatus
from keyport.domain.users import NewUser
from keyport.services.ports import AuditFilter
from tests.conftest import Tenant

DEADLINE = 60.0  # seconds: far beyond what the work needs, so only a deadlock can miss it


async def settled(*work: Any) -> list[Any]:
    """Runs everything at once; results and domain errors, in order."""
    return await asyncio.wait_for(asyncio.gather(*work, return_exceptions=True), DEADLINE)


async def audit_events(container: Container, target_id: str) -> list[AuditEvent]:
    """Every event about one thing, in the order they were written."""
    async with SqlUnitOfWorkFactory(container.engine)() as uow:
        events, _ = await uow.audit.list(AuditFilter(target_id=target_id), 1000, 0)
    return sorted(events, key=lambda e: e.id)


async def test_racing_status_changes_leave_one_consistent_history(
    container: Container, tenant: Tenant
) -> None:
    keys = container.keys
    changes = [keys.deactivate_key, keys.activate_key, keys.revoke_key] * 8
    random.Random(7).shuffle(changes)
    results = await settled(*(c(tenant.company_id, tenant.key_id, Actor.cli()) for c in changes))

    refused = [r for r in results if isinstance(r, Exception)]
    assert all(isinstance(r, InvalidKeyTransition) for r in refused), refused
    history = await audit_events(container, tenant.key_id)
    transitions = [e for e in history if e.action != "api_key.created"]
    assert len(transitions) == len(results) - len(refused)  # one event per change, no more
    state = "active"
    for event in transitions:  # each change starts where the one before ended
        assert event.details["from"] == state
        state = event.details["to"]
    assert state == "revoked" and transitions[-1].action == "api_key.revoked"
    assert (await keys.get_key(tenant.company_id, tenant.key_id)).status is KeyStatus.REVOKED


async def test_the_database_itself_refuses_to_bring_a_revoked_key_back(
    container: Container, tenant: Tenant
) -> None:
    await container.keys.revoke_key(tenant.company_id, tenant.key_id, Actor.cli())
    with pytest.raises(Exception, match="revoked API key can never change status"):
        async with container.engine.begin() as connection:
            await connection.execute(
                update(api_keys).where(api_keys.c.id == tenant.key_id).values(status="active")
            )
    with pytest.raises(Exception, match="rate_limit"):
        async with container.engine.begin() as connection:
            await connection.execute(
                update(api_keys).where(api_keys.c.id == tenant.key_id).values(rate_limit=0)
            )


async def test_creating_one_email_at_once_creates_one_user_and_one_event(
    container: Container, tenant: Tenant
) -> None:
    twin = NewUser("twin@acme.test", "Twin", "User", "UTC", slug="twin-user")
    results = await settled(
        *(container.users.add_user(tenant.admin, twin, Actor.cli()) for _ in range(8))
    )
    created = [r for r in results if not isinstance(r, Exception)]
    assert len(created) == 1
    assert {type(r) for r in results if isinstance(r, Exception)} <= {Conflict}
    events = await audit_events(container, created[0].id)
    assert [e.action for e in events] == ["user.created"]


async def test_deleting_one_user_at_once_deletes_it_once(
    container: Container, tenant: Tenant
) -> None:
    results = await settled(
        *(
            container.users.delete_user(tenant.owner, tenant.member.id, Actor.cli())
            for _ in range(6)
        )
    )
    assert [r for r in results if not isinstance(r, Exception)] == [None]
    assert {type(r) for r in results if isinstance(r, Exception)} == {NotFound}
    assert [e.action for e in await audit_events(container, tenant.member.id)] == [
        "user.created",
        "user.deleted",
    ]


async def test_traffic_racing_changes_never_fails_and_never_outlives_a_revocation(
    container: Container, tenant: Tenant, client: httpx.AsyncClient
) -> None:
    spare = [
        await container.keys.issue_key(tenant.company_id, name=None, days=5, actor=Actor.cli())
        for _ in range(3)
    ]
    revoked_at: dict[str, float] = {}
    answers: list[tuple[str, float, int]] = []
    loop = asyncio.get_running_loop()

    def started_after_revocation(key_id: str) -> int:
        at = revoked_at.get(key_id)
        return sum(
            1 for k, started, _ in answers if k == key_id and at is not None and started > at
        )

    async def traffic(key: str, key_id: str, acting: str | None) -> None:
        headers = {"Authorization": f"Bearer {key}"}
        if acting:
            headers["x-meetergo-api-user-id"] = acting
        sent = 0
        # A key being revoked: until three started after its revocation (no more, or their
        # 401s would trip the client's failed-authentication limit: 429). Others: 40.
        while started_after_revocation(key_id) < 3 if key_id in doomed else sent < 40:
            assert sent < 5000, f"no request started after {key_id} was revoked"
            started = loop.time()
            answer = await client.get("/v4/user/me", headers=headers)
            answers.append((key_id, started, answer.status_code))
            sent += 1
            # A cache hit never suspends: without this the changes would only run after the
            # traffic, and no request would ever start after a revocation. A pause (not a
            # wait for a condition) rather than sleep(0): four loops that never let go starve
            # the SQLite writers' thread hand-offs past their 5 s busy timeout on a busy or
            # slow CI machine (1 ms was not enough on one three times slower than usual).
            await asyncio.sleep(0.005)

    async def revoke(key_id: str) -> None:
        await asyncio.sleep(0.01)
        await container.keys.revoke_key(tenant.company_id, key_id, Actor.cli())
        revoked_at[key_id] = loop.time()

    doomed = {k.record.id for k in spare}
    work: list[Coroutine[Any, Any, object]] = [traffic(k.key, k.record.id, None) for k in spare]
    work += [traffic(tenant.key, tenant.key_id, tenant.member.id)]
    work += [revoke(k.record.id) for k in spare]
    work += [container.keys.deactivate_key(tenant.company_id, tenant.key_id, Actor.cli())]
    work += [container.users.delete_user(tenant.owner, tenant.member.id, Actor.cli())]
    work += [
        container.users.add_user(
            tenant.admin, NewUser(f"n{n}@acme.test", "N", "U", "UTC"), Actor.cli()
        )
        for n in range(5)
    ]
    results = await settled(*work)
    assert not [r for r in results if isinstance(r, Exception)], results

    statuses = Counter(status for _, _, status in answers)
    assert set(statuses) <= {200, 401, 403, 429}, statuses  # 429: a key over its budget
    assert set(revoked_at) == doomed
    late = {
        key_id: [s for k, t, s in answers if k == key_id and t > at]
        for key_id, at in revoked_at.items()
    }
    # Each revoked key was tried after its revocation, and every such request was refused.
    assert all(len(statuses) >= 3 for statuses in late.values()), late
    # Refused: 401, or 429 once the client's failed authentications are over their limit.
    assert {s for statuses in late.values() for s in statuses} <= {401, 429}, late
    assert all(401 in statuses for statuses in late.values()), late


async def test_mixed_changes_on_many_keys_and_users_finish_without_deadlock(
    container: Container, tenant: Tenant
) -> None:
    issued = [
        await container.keys.issue_key(tenant.company_id, name=None, days=5, actor=Actor.cli())
        for _ in range(6)
    ]
    rng = random.Random(11)
    keys = container.keys
    work: list[Any] = []
    for _ in range(60):
        key_id = rng.choice(issued).record.id
        change = rng.choice([keys.deactivate_key, keys.activate_key, keys.revoke_key])
        work.append(change(tenant.company_id, key_id, Actor.cli()))
        if rng.random() < 0.3:
            work.append(
                keys.set_rate_limit(tenant.company_id, key_id, rng.randint(1, 500), Actor.cli())
            )
    work.append(container.users.delete_user(tenant.admin, tenant.member.id, Actor.cli()))
    results = await settled(*work)
    allowed = (InvalidKeyTransition, NotFound, PermissionDenied)
    assert all(not isinstance(r, Exception) or isinstance(r, allowed) for r in results), results
    for key in issued:
        history = [
            e
            for e in await audit_events(container, key.record.id)
            if e.action not in {"api_key.created", "api_key.rate_limit_set"}
        ]
        state = "active"
        for event in history:
            assert event.details["from"] == state
            state = event.details["to"]
        assert (await keys.get_key(tenant.company_id, key.record.id)).status.value == state
