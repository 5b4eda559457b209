"""Rotation: a new key takes over, the old one works until the grace ends, then has expired."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from keyport.bootstrap import Container
from keyport.domain.audit import Actor
from keyport.domain.clock import FixedClock
from keyport.domain.errors import InvalidKeyTransition, NotFound, ValidationFailed
from keyport.domain.keys import KeyStatus
from tests.conftest import Tenant

EXPIRED = {"statusCode": 401, "message": "API key has expired", "error": "Unauthorized"}


async def _me(client: httpx.AsyncClient, key: str) -> httpx.Response:
    return await client.get("/v4/user/me", headers={"Authorization": f"Bearer {key}"})


async def test_the_old_key_works_until_the_grace_ends_then_has_expired(
    container: Container, client: httpx.AsyncClient, tenant: Tenant, clock: FixedClock
) -> None:
    await container.keys.set_scopes(tenant.company_id, tenant.key_id, ["users:read"], Actor.cli())
    await container.keys.set_rate_limit(tenant.company_id, tenant.key_id, 77, Actor.cli())
    rotated = await container.keys.rotate_key(
        tenant.company_id, tenant.key_id, Actor.cli(), grace_period_seconds=3600
    )
    new = rotated.issued.record
    assert (new.name, new.scopes, new.rate_limit, new.status) == (
        "Test key",
        ("users:read",),
        77,
        KeyStatus.ACTIVE,
    )
    assert new.expires_at == clock.now() + timedelta(days=30)  # the old key's whole lifetime
    assert rotated.previous.expires_at == clock.now() + timedelta(hours=1)

    assert (await _me(client, tenant.key)).status_code == 200
    assert (await _me(client, rotated.issued.key)).status_code == 200
    clock.advance(timedelta(minutes=59, seconds=59))
    assert (await _me(client, tenant.key)).status_code == 200
    clock.advance(timedelta(seconds=1))
    refused = await _me(client, tenant.key)
    assert (refused.status_code, refused.json()) == (401, EXPIRED)
    assert (await _me(client, rotated.issued.key)).status_code == 200


async def test_rotation_without_grace_ends_the_old_key_at_once(
    container: Container, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    assert (await _me(client, tenant.key)).status_code == 200  # cached now
    rotated = await container.keys.rotate_key(tenant.company_id, tenant.key_id, Actor.cli(), days=7)
    refused = await _me(client, tenant.key)
    assert (refused.status_code, refused.json()) == (401, EXPIRED)
    assert (await _me(client, rotated.issued.key)).status_code == 200


async def test_grace_never_outlives_the_old_keys_own_expiry(
    container: Container, tenant: Tenant, clock: FixedClock
) -> None:
    short = await container.keys.issue_key(tenant.company_id, name="s", days=1, actor=Actor.cli())
    rotated = await container.keys.rotate_key(
        tenant.company_id, short.record.id, Actor.cli(), grace_period_seconds=604800
    )
    assert rotated.previous.expires_at == short.record.expires_at
    assert rotated.issued.record.expires_at == clock.now() + timedelta(days=1)


async def test_revoked_and_expired_keys_cannot_be_rotated_deactivated_ones_can(
    container: Container, tenant: Tenant, clock: FixedClock
) -> None:
    revoked = await container.keys.issue_key(
        tenant.company_id, name=None, days=5, actor=Actor.cli()
    )
    await container.keys.revoke_key(tenant.company_id, revoked.record.id, Actor.cli())
    with pytest.raises(InvalidKeyTransition):
        await container.keys.rotate_key(tenant.company_id, revoked.record.id, Actor.cli())

    expiring = await container.keys.issue_key(
        tenant.company_id, name=None, days=1, actor=Actor.cli()
    )
    clock.advance(timedelta(days=1))
    with pytest.raises(InvalidKeyTransition) as expired:
        await container.keys.rotate_key(tenant.company_id, expiring.record.id, Actor.cli())
    assert expired.value.message == "API key has expired"

    await container.keys.deactivate_key(tenant.company_id, tenant.key_id, Actor.cli())
    rotated = await container.keys.rotate_key(tenant.company_id, tenant.key_id, Actor.cli())
    assert rotated.issued.record.status is KeyStatus.ACTIVE


@pytest.mark.parametrize("grace", [-1, 604801, 1.5, "1h", True])
async def test_a_grace_outside_zero_to_seven_days_is_refused(
    container: Container, tenant: Tenant, grace: object
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        await container.keys.rotate_key(
            tenant.company_id, tenant.key_id, Actor.cli(), grace_period_seconds=grace
        )
    assert refused.value.errors[0].field == "gracePeriodSeconds"


async def test_another_companys_key_is_not_found(
    container: Container, tenant: Tenant, other_tenant: Tenant
) -> None:
    with pytest.raises(NotFound):
        await container.keys.rotate_key(other_tenant.company_id, tenant.key_id, Actor.cli())
    assert await container.keys.company_of_key(tenant.key_id) == tenant.company_id
