"""The change sequence: audit and invalidation-log row in the change's transaction, then evict."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from keyport.bootstrap import Container
from keyport.db.tables import cache_invalidations
from keyport.db.uow import SqlUnitOfWorkFactory
from keyport.domain.audit import Actor, AuditAction
from keyport.services.access.cache import USER
from keyport.services.access.invalidation import Invalidator
from keyport.services.ports import AuditFilter
from keyport.services.runtime.changes import Changes
from tests.conftest import Tenant


async def _invalidation_rows(container: Container, target: str) -> int:
    async with container.engine.connect() as connection:
        query = select(func.count()).where(cache_invalidations.c.target == target)
        return int((await connection.execute(query)).scalar_one())


async def _audited(container: Container, target: str) -> list[str]:
    async with SqlUnitOfWorkFactory(container.engine)() as uow:
        events, _ = await uow.audit.list(AuditFilter(target_id=target), 10, 0)
    return sorted(event.action for event in events)


def _changes(container: Container, told: list[tuple[str, str, list[str]]]) -> Changes:
    invalidator = Invalidator(container.caches)

    async def broadcast(kind: str, target: str) -> None:
        # What a broadcaster is told must already be committed: record what others can see.
        told.append((kind, target, await _audited(container, target)))

    invalidator.add_broadcaster(broadcast)
    uow = SqlUnitOfWorkFactory(container.engine)
    return Changes(uow, container.clock, "user", (USER, invalidator))


async def test_a_change_is_audited_logged_committed_then_evicted(
    container: Container, tenant: Tenant
) -> None:
    told: list[tuple[str, str, list[str]]] = []
    target = tenant.member.id
    async with _changes(container, told).open() as change:
        await change.record(
            tenant.company_id, AuditAction.USER_UPDATED, Actor.cli(), target, {"x": 1}, evict=True
        )
        assert told == []  # nothing leaves the process before the commit
    assert told == [(USER, target, sorted([AuditAction.USER_UPDATED, AuditAction.USER_CREATED]))]
    assert await _invalidation_rows(container, target) == 1


async def test_a_change_that_fails_leaves_no_trace_and_evicts_nothing(
    container: Container, tenant: Tenant
) -> None:
    told: list[tuple[str, str, list[str]]] = []
    target = tenant.member.id
    with pytest.raises(RuntimeError, match="half way"):
        async with _changes(container, told).open() as change:
            await change.record(
                tenant.company_id, AuditAction.USER_DELETED, Actor.cli(), target, evict=True
            )
            raise RuntimeError("half way")
    assert told == []
    assert await _audited(container, target) == [AuditAction.USER_CREATED]
    assert await _invalidation_rows(container, target) == 0


async def test_a_change_without_evict_writes_no_invalidation(
    container: Container, tenant: Tenant
) -> None:
    told: list[tuple[str, str, list[str]]] = []
    target = tenant.admin.id
    async with _changes(container, told).open() as change:
        await change.record(tenant.company_id, AuditAction.USER_UPDATED, Actor.cli(), target)
    assert told == []
    assert await _invalidation_rows(container, target) == 0
    assert await _audited(container, target) == sorted(
        [AuditAction.USER_UPDATED, AuditAction.USER_CREATED]
    )
