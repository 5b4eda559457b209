"""Personal access tokens as a use case: create with the policy and scope rules, list, revoke,
regenerate, the company policy, audit entries and webhooks; and no token at rest."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from keyport.bootstrap import Container
from keyport.db.tables import metadata
from keyport.domain.audit import Actor
from keyport.domain.clock import FixedClock
from keyport.domain.errors import Conflict, NotFound, ValidationFailed
from keyport.domain.personal_tokens import TokensDisabled, TokenState
from tests.conftest import Tenant
from tests.support.receiver import Receiver


async def _every_stored_value(c: Container) -> str:
    seen: list[str] = []
    async with c.engine.connect() as connection:
        for table in metadata.sorted_tables:
            for row in await connection.execute(select(table)):
                seen.extend(repr(value) for value in row)
    return "\n".join(seen)


async def test_a_token_is_created_listed_and_never_stored(
    container: Container, tenant: Tenant
) -> None:
    issued = await container.tokens.issue(
        tenant.member, name="Laptop", days=30, scopes=None, actor=Actor("user", tenant.member.id)
    )
    assert issued.token.startswith("rgo-") and len(issued.token) == 36
    assert issued.record.scopes == ("*",)
    [view] = await container.tokens.own(tenant.member)
    assert (view.token.id, view.state) == (issued.record.id, TokenState.ACTIVE)
    stored = await _every_stored_value(container)  # audit entries included
    assert issued.token not in stored and issued.token[4:20] not in stored


async def test_keys_manage_a_taken_name_and_the_maximum_are_refused(
    container: Container, tenant: Tenant
) -> None:
    actor = Actor("user", tenant.member.id)
    with pytest.raises(ValidationFailed, match="keys:manage"):
        await container.tokens.issue(
            tenant.member, name="A", days=7, scopes=["keys:manage"], actor=actor
        )
    await container.tokens.issue(tenant.member, name="CI", days=7, scopes=None, actor=actor)
    with pytest.raises(ValidationFailed, match="live token with this name"):
        await container.tokens.issue(tenant.member, name="ci", days=7, scopes=None, actor=actor)
    await container.tokens.set_policy(tenant.company_id, Actor.cli(), max_days=30)
    with pytest.raises(ValidationFailed, match="at most 30 days"):
        await container.tokens.issue(tenant.member, name="B", days=31, scopes=None, actor=actor)
    with pytest.raises(ValidationFailed, match="at most 30 days"):
        await container.tokens.issue(tenant.member, name="B", days=None, scopes=None, actor=actor)
    await container.tokens.set_policy(tenant.company_id, Actor.cli(), allow=False)
    with pytest.raises(TokensDisabled):
        await container.tokens.issue(tenant.member, name="B", days=7, scopes=None, actor=actor)


async def test_a_lower_maximum_lists_the_longer_tokens_which_keep_their_expiry(
    container: Container, tenant: Tenant
) -> None:
    actor = Actor("user", tenant.member.id)
    long = await container.tokens.issue(tenant.member, name="L", days=365, scopes=None, actor=actor)
    await container.tokens.issue(tenant.member, name="S", days=7, scopes=None, actor=actor)
    outcome = await container.tokens.set_policy(tenant.company_id, Actor.cli(), max_days=30)
    assert [t.id for t in outcome.longer] == [long.record.id]
    [again] = [v for v in await container.tokens.own(tenant.member) if v.token.name == "L"]
    assert again.token.expires_at == long.record.expires_at


async def test_an_admin_revokes_a_members_token_and_the_member_sees_a_notice(
    container: Container, tenant: Tenant
) -> None:
    issued = await container.tokens.issue(
        tenant.member, name="Laptop", days=30, scopes=None, actor=Actor("user", tenant.member.id)
    )
    with pytest.raises(NotFound):
        await container.tokens.get(tenant.admin, "00000000-0000-4000-8000-000000000000")
    team = await container.tokens.team(tenant.admin)
    assert [(v.token.id, v.owner_label) for v in team] == [(issued.record.id, "Max Member")]
    revoked = await container.tokens.revoke(
        tenant.admin, issued.record.id, Actor("user", tenant.admin.id)
    )
    assert revoked.revoke_reason == "revoked by Ada Admin"
    [notice] = await container.tokens.notices(tenant.member)
    assert notice.id == issued.record.id
    await container.tokens.dismiss_notices(tenant.member)
    assert await container.tokens.notices(tenant.member) == []
    with pytest.raises(Conflict):
        await container.tokens.revoke(tenant.admin, issued.record.id, Actor.cli())


async def test_a_member_cannot_revoke_someone_elses_token(
    container: Container, tenant: Tenant
) -> None:
    issued = await container.tokens.issue(
        tenant.admin, name="Admin's", days=30, scopes=None, actor=Actor("user", tenant.admin.id)
    )
    with pytest.raises(NotFound):
        await container.tokens.revoke(tenant.member, issued.record.id, Actor.cli())


async def test_its_own_revocation_leaves_no_notice(container: Container, tenant: Tenant) -> None:
    issued = await container.tokens.issue(
        tenant.member, name="Laptop", days=30, scopes=None, actor=Actor("user", tenant.member.id)
    )
    await container.tokens.revoke(tenant.member, issued.record.id, Actor.cli())
    assert await container.tokens.notices(tenant.member) == []


async def test_regenerate_keeps_name_scopes_and_lifetime_and_revokes_the_old_one(
    container: Container, tenant: Tenant, clock: FixedClock
) -> None:
    actor = Actor("user", tenant.member.id)
    old = await container.tokens.issue(
        tenant.member, name="CI", days=60, scopes=["users:read"], actor=actor
    )
    clock.advance(timedelta(days=1))
    new = await container.tokens.regenerate(tenant.member, old.record.id, actor)
    assert (new.record.name, new.record.scopes) == ("CI", ("users:read",))
    assert new.record.expires_at == clock.now() + timedelta(days=60)
    assert new.token != old.token
    states = {v.token.id: v.state for v in await container.tokens.own(tenant.member)}
    assert states == {old.record.id: TokenState.REVOKED, new.record.id: TokenState.ACTIVE}


async def test_changes_are_audited_and_sent_as_webhooks_without_the_token(
    hooks: Container, receiver: Receiver, clock: FixedClock
) -> None:
    from tests.conftest import make_tenant

    tenant = await make_tenant(hooks, "Acme")
    await hooks.webhooks.add_endpoint(tenant.company_id, receiver.url, [], Actor.cli())
    issued = await hooks.tokens.issue(
        tenant.member, name="Laptop", days=8, scopes=None, actor=Actor("user", tenant.member.id)
    )
    await hooks.tokens.revoke(tenant.owner, issued.record.id, Actor("user", tenant.owner.id))
    short = await hooks.tokens.issue(
        tenant.member, name="Short", days=3, scopes=None, actor=Actor("user", tenant.member.id)
    )
    assert await hooks.expiry_reminders.check() == 1
    clock.advance(timedelta(days=3))
    assert await hooks.expiry_reminders.check() == 1
    await hooks.deliverer.deliver_due()
    got = receiver.wait_for(5)
    bodies = sorted(
        (json.loads(r.body) for r in got),
        key=lambda b: (
            b["data"]["id"] != issued.record.id,
            b["type"] != "personal_access_token.created",
            b["type"],
        ),
    )
    assert [(b["type"], b["data"]["id"]) for b in bodies] == [
        ("personal_access_token.created", issued.record.id),
        ("personal_access_token.revoked", issued.record.id),
        ("personal_access_token.created", short.record.id),
        ("personal_access_token.expired", short.record.id),
        ("personal_access_token.expiring", short.record.id),
    ]
    assert bodies[1]["data"] == {
        "id": issued.record.id,
        "name": "Laptop",
        "userId": tenant.member.id,
        "status": "revoked",
        "scopes": ["*"],
        "createdAt": bodies[0]["data"]["createdAt"],
        "expiresAt": bodies[0]["data"]["expiresAt"],
        "lastUsedAt": None,
        "hint": issued.token[:8] + "…",
        "leak": None,
    }
    for request in got:
        assert (
            issued.token.encode() not in request.body and short.token.encode() not in request.body
        )
    stored = await _every_stored_value(hooks)
    assert issued.token not in stored and short.token not in stored
    assert issued.token[4:20] not in stored
