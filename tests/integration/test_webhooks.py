"""Webhooks: outbox, signed delivery to a real receiver on loopback, retries, disabling, SSRF."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from standardwebhooks import Webhook

from keyport.bootstrap import Container
from keyport.db.uow import SqlUnitOfWork
from keyport.domain.audit import Actor
from keyport.domain.clock import FixedClock
from keyport.domain.errors import ValidationFailed
from keyport.domain.webhooks import DeliveryStatus
from keyport.services.ports import AuditFilter
from tests.conftest import Tenant, make_tenant
from tests.support.api_calls import KEY_FIELDS
from tests.support.receiver import Receiver


async def _endpoint(c: Container, tenant: Tenant, url: str, *events: str) -> str:
    added = await c.webhooks.add_endpoint(tenant.company_id, url, list(events), Actor.cli())
    assert added.secret.startswith("whsec_")
    return added.secret


def _verified(secret: str, request: object) -> dict[str, object]:
    headers = request.headers  # type: ignore[attr-defined]
    body = request.body  # type: ignore[attr-defined]
    return Webhook(secret).verify(body, headers)  # type: ignore[no-any-return]


async def test_a_key_change_is_delivered_signed_and_verifiable(
    hooks: Container, receiver: Receiver, clock: FixedClock
) -> None:
    tenant = await make_tenant(hooks, "Acme")
    secret = await _endpoint(hooks, tenant, receiver.url)
    issued = await hooks.keys.issue_key(
        tenant.company_id, name="CI", days=30, actor=Actor.cli(), scopes=["users:read"]
    )

    assert await hooks.deliverer.deliver_due() == 1
    [request] = receiver.wait_for(1)
    clock.set(clock.now())  # the receiver checks the timestamp against its own clock
    payload = _verified(secret, request)
    assert payload["type"] == "api_key.created"
    data = payload["data"]
    assert isinstance(data, dict)
    assert data["id"] == issued.record.id
    assert data["status"] == "active"
    assert data["scopes"] == ["users:read"]
    assert data["allowedIps"] == []
    assert set(data) == KEY_FIELDS
    assert request.headers["webhook-id"].startswith("msg_")
    assert issued.key not in request.body.decode()
    assert secret not in request.body.decode()
    [delivery] = await hooks.webhooks.deliveries(tenant.company_id)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (
        DeliveryStatus.DELIVERED,
        1,
        204,
    )


async def test_an_endpoint_gets_only_the_event_types_it_asked_for(
    hooks: Container, receiver: Receiver
) -> None:
    tenant = await make_tenant(hooks, "Acme")
    await _endpoint(hooks, tenant, receiver.url, "api_key.revoked")
    issued = await hooks.keys.issue_key(tenant.company_id, name=None, days=3, actor=Actor.cli())
    await hooks.keys.revoke_key(tenant.company_id, issued.record.id, Actor.cli())

    assert await hooks.deliverer.deliver_due() == 1
    [request] = receiver.wait_for(1)
    assert json.loads(request.body)["type"] == "api_key.revoked"
    assert json.loads(request.body)["data"]["status"] == "revoked"


async def test_a_failing_receiver_is_retried_with_the_same_webhook_id(
    hooks: Container, receiver: Receiver, clock: FixedClock
) -> None:
    tenant = await make_tenant(hooks, "Acme")
    secret = await _endpoint(hooks, tenant, receiver.url)
    await hooks.keys.deactivate_key(tenant.company_id, tenant.key_id, Actor.cli())
    receiver.status = 500

    assert await hooks.deliverer.deliver_due() == 1
    [delivery] = await hooks.webhooks.deliveries(tenant.company_id)
    assert delivery.status is DeliveryStatus.PENDING
    assert delivery.last_status_code == 500
    assert delivery.next_attempt_at == clock.now() + timedelta(seconds=5)  # within 10 s
    assert await hooks.deliverer.deliver_due() == 0  # not due yet

    receiver.status = 200
    clock.advance(timedelta(seconds=5))
    assert await hooks.deliverer.deliver_due() == 1
    first, second = receiver.wait_for(2)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert _verified(secret, second)["type"] == "api_key.deactivated"
    [delivery] = await hooks.webhooks.deliveries(tenant.company_id)
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.DELIVERED, 2)


async def test_the_schedule_gives_up_after_the_last_retry(
    hooks: Container, receiver: Receiver, clock: FixedClock
) -> None:
    tenant = await make_tenant(hooks, "Acme")
    await _endpoint(hooks, tenant, receiver.url)
    await hooks.keys.deactivate_key(tenant.company_id, tenant.key_id, Actor.cli())
    receiver.status = 503
    waits = []
    for _ in range(8):
        assert await hooks.deliverer.deliver_due() == 1
        [delivery] = await hooks.webhooks.deliveries(tenant.company_id)
        if delivery.next_attempt_at is None:
            break
        waits.append(delivery.next_attempt_at - clock.now())
        clock.set(delivery.next_attempt_at)
    assert waits == [
        timedelta(seconds=5),
        timedelta(minutes=5),
        timedelta(minutes=30),
        timedelta(hours=2),
        timedelta(hours=5),
        timedelta(hours=10),
        timedelta(hours=10),
    ]
    assert delivery.status is DeliveryStatus.FAILED
    assert delivery.attempts == 8
    # "retry now" brings it back once more.
    await hooks.webhooks.retry_now(tenant.company_id, delivery.id)
    receiver.status = 200
    assert await hooks.deliverer.deliver_due() == 1
    [delivery] = await hooks.webhooks.deliveries(tenant.company_id)
    assert delivery.status is DeliveryStatus.DELIVERED


async def test_an_endpoint_failing_for_three_days_is_disabled_and_audited(
    hooks: Container, receiver: Receiver, clock: FixedClock
) -> None:
    tenant = await make_tenant(hooks, "Acme")
    await _endpoint(hooks, tenant, receiver.url)
    receiver.status = 500
    await hooks.keys.deactivate_key(tenant.company_id, tenant.key_id, Actor.cli())
    assert await hooks.deliverer.deliver_due() == 1
    clock.advance(timedelta(days=3))
    await hooks.keys.activate_key(tenant.company_id, tenant.key_id, Actor.cli())
    assert await hooks.deliverer.deliver_due() == 2  # the new event and the due retry

    [endpoint] = await hooks.webhooks.list_endpoints(tenant.company_id)
    assert endpoint.disabled_at == clock.now()
    async with SqlUnitOfWork(hooks.engine) as uow:
        found, total = await uow.audit.list(
            AuditFilter(company_id=tenant.company_id, action="webhook.disabled"), 10, 0
        )
    assert total == 1
    assert found[0].target_id == endpoint.id
    assert found[0].actor.label == "system"
    await hooks.keys.deactivate_key(tenant.company_id, tenant.key_id, Actor.cli())
    assert await hooks.deliverer.deliver_due() == 0  # disabled: nothing more is sent


async def test_private_and_loopback_targets_are_refused_by_default(container: Container) -> None:
    tenant = await make_tenant(container, "Acme")
    for url in (
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest",
        "http://[::ffff:127.0.0.1]/hook",
    ):
        with pytest.raises(ValidationFailed) as refused:
            await container.webhooks.add_endpoint(tenant.company_id, url, [], Actor.cli())
        assert refused.value.errors[0].field == "url"
    with pytest.raises(ValidationFailed):
        await container.webhooks.add_endpoint(tenant.company_id, "ftp://x.test/", [], Actor.cli())
    with pytest.raises(ValidationFailed):
        await container.webhooks.add_endpoint(
            tenant.company_id, "https://hooks.example.com/", ["api_key.nope"], Actor.cli()
        )


async def test_an_event_no_endpoint_wants_leaves_no_outbox_row(
    hooks: Container, receiver: Receiver
) -> None:
    tenant = await make_tenant(hooks, "Acme")
    await hooks.keys.deactivate_key(tenant.company_id, tenant.key_id, Actor.cli())
    await _endpoint(hooks, tenant, receiver.url)
    assert await hooks.deliverer.deliver_due() == 0
    assert receiver.requests == []
