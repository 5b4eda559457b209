"""The key lifecycle service: issue, list, deactivate, activate, revoke — and their audit."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from keyport.bootstrap import Container
from keyport.db.tables import api_keys, audit_events
from keyport.domain.audit import Actor
from keyport.domain.clock import FixedClock
from keyport.domain.errors import InvalidKeyTransition, NotFound, ValidationFailed
from keyport.domain.keys import KeyStatus, digest
from tests.conftest import Tenant


async def audit_actions(container: Container, key_id: str) -> list[str]:
    async with container.engine.connect() as connection:
        result = await connection.execute(
            select(audit_events.c.action)
            .where(audit_events.c.target_id == key_id)
            .order_by(audit_events.c.id)
        )
    return list(result.scalars())


async def test_issue_stores_only_the_digest_and_a_hint(
    container: Container, tenant: Tenant, clock: FixedClock
) -> None:
    issued = await container.keys.issue_key(
        tenant.company_id, name=" Production Integration ", days=90, actor=Actor.cli()
    )
    record = issued.record
    assert (record.name, record.status, record.expires_at) == (
        "Production Integration",
        KeyStatus.ACTIVE,
        clock.now() + timedelta(days=90),
    )
    assert issued.key.startswith(f"ak_live:{record.id}:")
    async with container.engine.connect() as connection:
        row = (await connection.execute(select(api_keys).where(api_keys.c.id == record.id))).one()
    secret = issued.key.split(":")[2]
    assert row.digest == digest(issued.key)
    assert secret not in "".join(str(v) for v in row)
    assert row.hint == issued.key[:49] + "…"


@pytest.mark.parametrize("days", [0, 91, 2.5, "ninety"])
async def test_issue_refuses_bad_expiry(container: Container, tenant: Tenant, days: object) -> None:
    with pytest.raises(ValidationFailed):
        await container.keys.issue_key(tenant.company_id, name=None, days=days, actor=Actor.cli())


async def test_issue_for_an_unknown_company_is_not_found(container: Container) -> None:
    with pytest.raises(NotFound):
        await container.keys.issue_key(str(uuid.uuid4()), name=None, days=5, actor=Actor.cli())


async def test_list_never_holds_a_secret(container: Container, tenant: Tenant) -> None:
    page = await container.keys.list_keys(tenant.company_id)
    assert page.total == 1
    assert [k.id for k in page.keys] == [tenant.key_id]
    assert tenant.key.split(":")[2] not in repr(page)


async def test_lifecycle_writes_one_audit_event_per_change(
    container: Container, tenant: Tenant
) -> None:
    actor = Actor("user", user_id=tenant.admin.id, ip="198.51.100.4")
    await container.keys.deactivate_key(tenant.company_id, tenant.key_id, actor)
    await container.keys.activate_key(tenant.company_id, tenant.key_id, actor)
    revoked = await container.keys.revoke_key(tenant.company_id, tenant.key_id, actor)
    assert revoked.status is KeyStatus.REVOKED
    assert await audit_actions(container, tenant.key_id) == [
        "api_key.created",
        "api_key.deactivated",
        "api_key.activated",
        "api_key.revoked",
    ]


async def test_a_revoked_key_can_never_come_back(container: Container, tenant: Tenant) -> None:
    await container.keys.revoke_key(tenant.company_id, tenant.key_id, Actor.cli())
    with pytest.raises(InvalidKeyTransition, match="revoked and can never be used again"):
        await container.keys.activate_key(tenant.company_id, tenant.key_id, Actor.cli())
    with pytest.raises(InvalidKeyTransition):
        await container.keys.deactivate_key(tenant.company_id, tenant.key_id, Actor.cli())
    assert await audit_actions(container, tenant.key_id) == ["api_key.created", "api_key.revoked"]


async def test_another_companys_key_is_not_found(
    container: Container, tenant: Tenant, other_tenant: Tenant
) -> None:
    for key_id in [other_tenant.key_id, "not-a-uuid", str(uuid.uuid4())]:
        with pytest.raises(NotFound, match="API key not found"):
            await container.keys.revoke_key(tenant.company_id, key_id, Actor.cli())
    page = await container.keys.list_keys(other_tenant.company_id)
    assert page.keys[0].status is KeyStatus.ACTIVE


async def test_a_failed_change_leaves_no_audit_event(container: Container, tenant: Tenant) -> None:
    with pytest.raises(InvalidKeyTransition):
        await container.keys.activate_key(tenant.company_id, tenant.key_id, Actor.cli())
    assert await audit_actions(container, tenant.key_id) == ["api_key.created"]


async def test_the_database_refuses_an_impossible_status(
    container: Container, tenant: Tenant
) -> None:
    from sqlalchemy import update
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError):
        async with container.engine.begin() as connection:
            await connection.execute(update(api_keys).values(status="zombie"))
