"""Rotation: a new key takes over, the old one works until the grace ends, then has expired."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest

from keyport.bootstrap import Container
from keyport.domain.audit import Actor
from keyport.domain.clock import FixedClock
from keyport.domain.errors import InvalidKeyTransition, NotFound, ValidationFailed
from keyport.domain.key_events import iso_utc
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


ALREADY_ROTATED = {
    "statusCode": 409,
    "message": "API key has already been rotated",
    "error": "Conflict",
}


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_a_key_in_its_grace_cannot_rotate_itself_again(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    """Issue 30, item 2: the old (perhaps stolen) key may not renew itself forever."""
    first = await client.post(
        "/v1/keys/self/rotate", headers=_bearer(tenant.key), json={"gracePeriodSeconds": 3600}
    )
    assert first.status_code == 201
    assert first.json()["rotatedTo"] is None

    again = await client.post(
        "/v1/keys/self/rotate", headers=_bearer(tenant.key), json={"expiresInDays": 30}
    )
    assert (again.status_code, again.json()) == (409, ALREADY_ROTATED)
    # It keeps working until its grace ends; its successor may rotate as usual.
    assert (await _me(client, tenant.key)).status_code == 200
    successor = await client.post("/v1/keys/self/rotate", headers=_bearer(first.json()["key"]))
    assert successor.status_code == 201


async def test_a_rotated_key_cannot_rotate_again_by_id(
    container: Container, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    manager = await container.keys.issue_key(
        tenant.company_id, name="m", days=30, actor=Actor.cli(), scopes=["keys:manage", "*"]
    )
    rotated = await container.keys.rotate_key(
        tenant.company_id, tenant.key_id, Actor.cli(), grace_period_seconds=3600
    )
    answer = await client.post(f"/v1/keys/{tenant.key_id}/rotate", headers=_bearer(manager.key))
    assert (answer.status_code, answer.json()) == (409, ALREADY_ROTATED)
    shown = await client.get(f"/v1/keys/{tenant.key_id}", headers=_bearer(manager.key))
    assert shown.json()["rotatedTo"] == rotated.issued.record.id
    with pytest.raises(InvalidKeyTransition, match="API key has already been rotated"):
        await container.keys.rotate_key(tenant.company_id, tenant.key_id, Actor.cli())


async def test_two_rotations_at_once_make_one_successor(
    container: Container, tenant: Tenant
) -> None:
    outcomes = await asyncio.gather(
        *(
            container.keys.rotate_key(
                tenant.company_id, tenant.key_id, Actor.cli(), grace_period_seconds=60
            )
            for _ in range(2)
        ),
        return_exceptions=True,
    )
    refused = [o for o in outcomes if isinstance(o, InvalidKeyTransition)]
    assert len(refused) == 1 and refused[0].message == "API key has already been rotated"


async def test_a_key_renews_itself_for_at_most_its_own_lifetime(
    container: Container, client: httpx.AsyncClient, tenant: Tenant, clock: FixedClock
) -> None:
    """Made for 7 days, a key cannot ask for 90 when it renews itself; 7 (or fewer) it may."""
    short = await container.keys.issue_key(tenant.company_id, name="s", days=7, actor=Actor.cli())
    longer = await client.post(
        "/v1/keys/self/rotate", headers=_bearer(short.key), json={"expiresInDays": 90}
    )
    assert (longer.status_code, longer.json()) == (
        400,
        {
            "statusCode": 400,
            "message": "Validation failed",
            "error": "Bad Request",
            "errors": [
                {
                    "field": "expiresInDays",
                    "message": "must be at most this key's own lifetime, 7 days",
                }
            ],
        },
    )
    eight = await client.post(
        "/v1/keys/self/rotate", headers=_bearer(short.key), json={"expiresInDays": 8}
    )
    assert eight.status_code == 400
    same = await client.post(
        "/v1/keys/self/rotate", headers=_bearer(short.key), json={"expiresInDays": 7}
    )
    assert same.status_code == 201
    assert same.json()["expiresAt"] == iso_utc(clock.now() + timedelta(days=7))
