"""Scopes and IP allowlists on the key service: stored, audited, read back by the hot path."""

from __future__ import annotations

import ipaddress

import pytest
from sqlalchemy import select

from keyport.bootstrap import Container
from keyport.db.repositories import SqlKeyRepository
from keyport.db.tables import audit_events
from keyport.domain.audit import Actor
from keyport.domain.errors import NotFound, ValidationFailed
from keyport.domain.keys import digest
from tests.conftest import Tenant


async def test_a_key_made_without_scopes_has_full_access_and_no_allowlist(
    container: Container, tenant: Tenant
) -> None:
    key = await container.keys.get_key(tenant.company_id, tenant.key_id)
    assert (key.scopes, key.allowed_ips) == (("*",), ())
    principal = await container.hot_reader.principal_by_digest(digest(tenant.key))
    assert principal is not None
    assert (principal.scopes, principal.allowed_networks) == (("*",), ())


async def test_issued_restrictions_reach_the_principal(
    container: Container, tenant: Tenant
) -> None:
    issued = await container.keys.issue_key(
        tenant.company_id,
        name="restricted",
        days=5,
        actor=Actor.cli(),
        scopes=["users:read", "orders:write"],
        allowed_ips=["10.0.0.0/8", "2001:db8::/32"],
    )
    assert issued.record.scopes == ("users:read", "orders:write")
    stored = await container.keys.get_key(tenant.company_id, issued.record.id)
    assert stored.allowed_ips == ("10.0.0.0/8", "2001:db8::/32")
    principal = await container.hot_reader.principal_by_digest(digest(issued.key))
    assert principal is not None
    assert principal.scopes == ("users:read", "orders:write")
    assert principal.allowed_networks == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("2001:db8::/32"),
    )
    async with container.engine.connect() as connection:
        repository = SqlKeyRepository(connection)
        assert await repository.principal_by_digest(digest(issued.key)) == principal


async def test_setting_scopes_and_allowlist_is_audited_and_evicts_the_cache(
    container: Container, tenant: Tenant
) -> None:
    before = await container.authenticator.authenticate(f"Bearer {tenant.key}")
    assert before.scopes == ("*",)
    actor = Actor("user", user_id=tenant.admin.id)
    changed = await container.keys.set_scopes(tenant.company_id, tenant.key_id, ["a:b"], actor)
    assert changed.scopes == ("a:b",)
    await container.keys.set_allowed_ips(tenant.company_id, tenant.key_id, ["192.0.2.0/24"], actor)
    after = await container.authenticator.authenticate(f"Bearer {tenant.key}")
    assert after.scopes == ("a:b",)
    assert after.allows_ip("192.0.2.9") and not after.allows_ip("198.51.100.1")
    cleared = await container.keys.set_allowed_ips(tenant.company_id, tenant.key_id, [], actor)
    assert cleared.allowed_ips == ()
    async with container.engine.connect() as connection:
        result = await connection.execute(
            select(audit_events.c.action, audit_events.c.details)
            .where(audit_events.c.target_id == tenant.key_id)
            .order_by(audit_events.c.id)
        )
        events = [(row.action, row.details) for row in result]
    assert events[1:] == [
        ("api_key.scopes_set", {"from": ["*"], "to": ["a:b"]}),
        ("api_key.allowed_ips_set", {"from": [], "to": ["192.0.2.0/24"]}),
        ("api_key.allowed_ips_set", {"from": ["192.0.2.0/24"], "to": []}),
    ]


async def test_bad_restrictions_are_refused(container: Container, tenant: Tenant) -> None:
    with pytest.raises(ValidationFailed):
        await container.keys.set_scopes(tenant.company_id, tenant.key_id, ["Nope"], Actor.cli())
    with pytest.raises(ValidationFailed):
        await container.keys.set_allowed_ips(
            tenant.company_id, tenant.key_id, ["10.0.0.1/8"], Actor.cli()
        )


async def test_another_companys_key_is_not_found(
    container: Container, tenant: Tenant, other_tenant: Tenant
) -> None:
    with pytest.raises(NotFound):
        await container.keys.set_scopes(
            tenant.company_id, other_tenant.key_id, ["a:b"], Actor.cli()
        )


async def test_many_digests_in_one_read_are_each_the_same_as_one_by_one(
    container: Container, tenant: Tenant
) -> None:
    issued = [
        await container.keys.issue_key(
            tenant.company_id,
            name=f"many {i}",
            days=30,
            actor=Actor.cli(),
            scopes=["users:read"] if i % 2 else None,
        )
        for i in range(3)
    ]
    await container.keys.revoke_key(tenant.company_id, issued[2].record.id, actor=Actor.cli())
    digests = [digest(tenant.key), *(digest(i.key) for i in issued), "0" * 64]
    reader = container.hot_reader
    found = await reader.principals_by_digests(digests)
    assert list(found) == digests
    assert found == {d: await reader.principal_by_digest(d) for d in digests}
    assert found["0" * 64] is None
    assert [found[d].key_id for d in digests[:4]] == [  # type: ignore[union-attr]
        tenant.key_id,
        *(i.record.id for i in issued),
    ]
