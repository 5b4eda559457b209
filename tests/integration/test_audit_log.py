"""The company audit log (services.audit.company_log): what it lists, how it filters, who may read
it."""

from __future__ import annotations

import pytest

from keyport.bootstrap import Container
from keyport.domain.audit import Actor, AuditAction
from keyport.domain.errors import PermissionDenied
from keyport.services.accounts.signin import SignInRefused
from keyport.services.audit.company_log import AuditQuery
from tests.conftest import Tenant


async def key_changes_and_sign_ins(container: Container, tenant: Tenant) -> str:
    """What an admin does in the dashboard; returns the id of the key made."""
    await container.sign_in.sign_in("admin@acme.test", "admin-password-1", "198.51.100.4")
    with pytest.raises(SignInRefused):
        await container.sign_in.sign_in("admin@acme.test", "wrong-password", "192.0.2.99")
    actor = Actor("user", user_id=tenant.admin.id, ip="198.51.100.4")
    issued = await container.key_management.issue_key(tenant.admin, actor, name="CI", days=7)
    key_id = issued.record.id
    await container.key_management.deactivate_key(tenant.admin, key_id, actor)
    await container.key_management.activate_key(tenant.admin, key_id, actor)
    await container.key_management.revoke_key(tenant.admin, key_id, actor)
    return key_id


async def test_the_audit_log_lists_key_changes_and_sign_ins_with_actor_and_ip(
    container: Container, tenant: Tenant, other_tenant: Tenant
) -> None:
    key_id = await key_changes_and_sign_ins(container, tenant)
    page = await container.audit_log.page(tenant.owner, AuditQuery(), limit=6, offset=0)

    newest = [(e.action, e.actor.user_id, e.actor.ip, e.target_id) for e in page.events]
    assert newest == [
        (AuditAction.KEY_REVOKED, tenant.admin.id, "198.51.100.4", key_id),
        (AuditAction.KEY_ACTIVATED, tenant.admin.id, "198.51.100.4", key_id),
        (AuditAction.KEY_DEACTIVATED, tenant.admin.id, "198.51.100.4", key_id),
        (AuditAction.KEY_CREATED, tenant.admin.id, "198.51.100.4", key_id),
        (AuditAction.SIGN_IN_FAILED, tenant.admin.id, "192.0.2.99", tenant.admin.id),
        (AuditAction.SIGN_IN_SUCCEEDED, tenant.admin.id, "198.51.100.4", tenant.admin.id),
    ]
    assert page.people[tenant.admin.id].email == "admin@acme.test"
    everything = await container.audit_log.export(tenant.owner, AuditQuery())
    assert everything.total == len(everything.events) > 6
    assert {e.company_id for e in everything.events} == {tenant.company_id}


async def test_the_audit_log_filters_by_actor_action_and_key(
    container: Container, tenant: Tenant
) -> None:
    key_id = await key_changes_and_sign_ins(container, tenant)
    log = container.audit_log

    async def actions(query: AuditQuery) -> list[str]:
        page = await log.page(tenant.owner, query, limit=100, offset=0)
        return [e.action for e in page.events]

    assert await actions(AuditQuery(key_id=key_id)) == [
        AuditAction.KEY_REVOKED,
        AuditAction.KEY_ACTIVATED,
        AuditAction.KEY_DEACTIVATED,
        AuditAction.KEY_CREATED,
    ]
    assert await actions(AuditQuery(action=AuditAction.SIGN_IN_FAILED)) == [
        AuditAction.SIGN_IN_FAILED
    ]
    by_admin = await actions(AuditQuery(actor_user_id=tenant.admin.id))
    assert len(by_admin) == 6
    assert await actions(AuditQuery(key_id="not-a-key")) == []
    assert await actions(AuditQuery(actor_user_id=tenant.owner.id)) == []


async def test_the_audit_log_pages_newest_first(container: Container, tenant: Tenant) -> None:
    await key_changes_and_sign_ins(container, tenant)
    first = await container.audit_log.page(tenant.owner, AuditQuery(), limit=4, offset=0)
    second = await container.audit_log.page(tenant.owner, AuditQuery(), limit=4, offset=4)
    ids = [e.id for e in [*first.events, *second.events]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 8
    assert first.total == second.total


async def test_members_may_not_read_the_audit_log(container: Container, tenant: Tenant) -> None:
    with pytest.raises(PermissionDenied):
        await container.audit_log.page(tenant.member, AuditQuery(), limit=10, offset=0)
    with pytest.raises(PermissionDenied):
        await container.audit_log.export(tenant.member, AuditQuery())
