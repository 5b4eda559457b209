"""Expiry reminders: 7 days, 1 day, expired; each once per key; by an injected clock."""

from __future__ import annotations

import json
from datetime import timedelta

from keyport.bootstrap import Container
from keyport.domain.audit import Actor
from keyport.domain.clock import FixedClock
from tests.conftest import make_tenant
from tests.support.receiver import Receiver


async def _events(c: Container, receiver: Receiver, expected: int) -> list[tuple[str, str]]:
    await c.deliverer.deliver_due()
    got = receiver.wait_for(expected)
    return [(json.loads(r.body)["type"], json.loads(r.body)["data"]["id"]) for r in got[-expected:]]


async def test_each_threshold_fires_once_per_key(
    hooks: Container, receiver: Receiver, clock: FixedClock
) -> None:
    tenant = await make_tenant(hooks, "Acme")  # its key expires in 30 days
    await hooks.webhooks.add_endpoint(
        tenant.company_id, receiver.url, ["api_key.expiring", "api_key.expired"], Actor.cli()
    )
    assert await hooks.expiry_reminders.check() == 0

    clock.advance(timedelta(days=23))
    assert await hooks.expiry_reminders.check() == 1
    assert await hooks.expiry_reminders.check() == 0
    assert await _events(hooks, receiver, 1) == [("api_key.expiring", tenant.key_id)]

    clock.advance(timedelta(days=6))
    assert await hooks.expiry_reminders.check() == 1
    clock.advance(timedelta(hours=23, minutes=59))
    assert await hooks.expiry_reminders.check() == 0
    assert await _events(hooks, receiver, 1) == [("api_key.expiring", tenant.key_id)]

    clock.advance(timedelta(minutes=1))
    assert await hooks.expiry_reminders.check() == 1
    assert await hooks.expiry_reminders.check() == 0
    [(kind, key_id)] = await _events(hooks, receiver, 1)
    assert (kind, key_id) == ("api_key.expired", tenant.key_id)
    assert json.loads(receiver.requests[-1].body)["data"]["status"] == "expired"
    assert len(receiver.requests) == 3


async def test_a_key_created_inside_a_threshold_fires_at_the_next_check(
    hooks: Container, receiver: Receiver, clock: FixedClock
) -> None:
    tenant = await make_tenant(hooks, "Acme")
    await hooks.webhooks.add_endpoint(
        tenant.company_id, receiver.url, ["api_key.expiring"], Actor.cli()
    )
    short = await hooks.keys.issue_key(tenant.company_id, name=None, days=3, actor=Actor.cli())
    assert await hooks.expiry_reminders.check() == 1
    assert await _events(hooks, receiver, 1) == [("api_key.expiring", short.record.id)]
    clock.advance(timedelta(days=2))
    assert await hooks.expiry_reminders.check() == 1  # the 1-day notice
    clock.advance(timedelta(days=2))  # expired, but this endpoint did not ask for that
    assert await hooks.expiry_reminders.check() == 1
    assert await hooks.deliverer.deliver_due() == 1
    assert len(receiver.wait_for(2)) == 2


async def test_thresholds_passed_while_nothing_ran_fire_only_the_latest(
    hooks: Container, receiver: Receiver, clock: FixedClock
) -> None:
    tenant = await make_tenant(hooks, "Acme")
    await hooks.webhooks.add_endpoint(tenant.company_id, receiver.url, [], Actor.cli())
    clock.advance(timedelta(days=31))
    assert await hooks.expiry_reminders.check() == 1
    assert await _events(hooks, receiver, 1) == [("api_key.expired", tenant.key_id)]
    clock.advance(timedelta(days=1))
    assert await hooks.expiry_reminders.check() == 0


async def test_a_rotated_key_fires_expired_when_its_grace_ends(
    hooks: Container, receiver: Receiver, clock: FixedClock
) -> None:
    tenant = await make_tenant(hooks, "Acme")
    await hooks.webhooks.add_endpoint(
        tenant.company_id, receiver.url, ["api_key.expired"], Actor.cli()
    )
    await hooks.keys.rotate_key(
        tenant.company_id, tenant.key_id, Actor.cli(), grace_period_seconds=600
    )
    await hooks.expiry_reminders.check()
    clock.advance(timedelta(minutes=10))
    assert await hooks.expiry_reminders.check() == 1
    assert await _events(hooks, receiver, 1) == [("api_key.expired", tenant.key_id)]
