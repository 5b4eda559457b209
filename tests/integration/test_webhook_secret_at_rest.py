"""Webhook signing secrets at rest: sealed under the server secret, never readable in the
database; the worker still signs with them, and one it cannot open fails the delivery with a
reason instead of stopping the worker."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url
from standardwebhooks import Webhook

from keyport.bootstrap import Container
from keyport.db.tables import metadata, webhook_endpoints
from keyport.domain.audit import Actor
from keyport.domain.clock import FixedClock
from keyport.domain.webhooks import SECRET_PREFIX, DeliveryStatus
from keyport.services.webhooks.delivery import UNREADABLE_SECRET
from tests.conftest import Tenant, make_tenant
from tests.support.containers import TEST_SECRET_KEY, webhook_container
from tests.support.receiver import Receiver

OTHER_SECRET_KEY = "another-server-secret-9876543210-zyxwvu"


def _forms(secret: str) -> list[bytes]:
    """The secret as text and its key part alone (what a dump could show)."""
    key = secret.removeprefix(SECRET_PREFIX)
    return [secret.encode(), key.encode()]


async def _every_stored_value(c: Container) -> str:
    """Every value in every Keyport table, as text: what a query over a dump would see."""
    seen: list[str] = []
    async with c.engine.connect() as connection:
        for table in metadata.sorted_tables:
            for row in await connection.execute(select(table)):
                seen.extend(repr(value) for value in row)
    return "\n".join(seen)


def _sqlite_file_bytes(database_url: str) -> bytes:
    """The database file and its write-ahead log, byte for byte."""
    path = Path(make_url(database_url).database or "")
    files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-journal")]
    return b"".join(f.read_bytes() for f in files if f.exists())


async def _issue(c: Container, tenant: Tenant) -> None:
    """A key change: one `api_key.created` event for every endpoint."""
    await c.keys.issue_key(tenant.company_id, name="CI", days=30, actor=Actor.cli())


async def test_the_signing_secret_is_not_in_the_database_yet_deliveries_verify(
    database_url: str, clock: FixedClock, receiver: Receiver
) -> None:
    async with webhook_container(database_url, clock, secret_key=TEST_SECRET_KEY) as c:
        tenant = await make_tenant(c, "Acme")
        added = await c.webhooks.add_endpoint(tenant.company_id, receiver.url, [], Actor.cli())
        secret = added.secret
        assert secret.startswith(SECRET_PREFIX)

        stored = await _every_stored_value(c)
        for form in _forms(secret):
            assert form.decode() not in stored
        async with c.engine.connect() as connection:
            sealed = await connection.scalar(
                select(webhook_endpoints.c.secret).where(
                    webhook_endpoints.c.id == added.endpoint.id
                )
            )
        assert sealed and not sealed.startswith(SECRET_PREFIX)  # a Fernet token, not the secret

        await _issue(c, tenant)
        assert await c.deliverer.deliver_due() == 1
        [request] = receiver.wait_for(1)
        clock.set(clock.now())
        payload = Webhook(secret).verify(request.body, request.headers)
        assert payload["type"] == "api_key.created"
        assert secret not in request.body.decode()
        [delivery] = await c.webhooks.deliveries(tenant.company_id)
        assert delivery.status == DeliveryStatus.DELIVERED

    if database_url.startswith("sqlite"):
        raw = _sqlite_file_bytes(database_url)
        assert sealed.encode() in raw  # the check reads the right file
        for form in _forms(secret):
            assert form not in raw


async def test_a_secret_sealed_under_another_server_secret_fails_the_delivery_with_a_reason(
    database_url: str,
    clock: FixedClock,
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with webhook_container(database_url, clock, secret_key=TEST_SECRET_KEY) as before:
        tenant = await make_tenant(before, "Acme")
        old = await before.webhooks.add_endpoint(tenant.company_id, receiver.url, [], Actor.cli())

    async with webhook_container(database_url, clock, secret_key=OTHER_SECRET_KEY) as after:
        await _issue(after, tenant)
        with caplog.at_level(logging.WARNING, logger="keyport.services.webhooks.delivery"):
            assert await after.deliverer.deliver_due() == 1  # the worker carries on
        assert receiver.requests == []  # nothing goes out unsigned
        [delivery] = await after.webhooks.deliveries(tenant.company_id)
        assert (delivery.status, delivery.attempts, delivery.last_error) == (
            DeliveryStatus.FAILED,
            1,
            UNREADABLE_SECRET,
        )
        assert delivery.next_attempt_at is None
        [record] = [r for r in caplog.records if UNREADABLE_SECRET in r.getMessage()]
        assert old.endpoint.id in record.getMessage()
        assert all(old.secret not in r.getMessage() for r in caplog.records)
        assert "remove and re-add the endpoint" in UNREADABLE_SECRET

        # What docs/operations.md tells the operator: remove the endpoint and add it again.
        await after.webhooks.remove_endpoint(tenant.company_id, old.endpoint.id, Actor.cli())
        new = await after.webhooks.add_endpoint(tenant.company_id, receiver.url, [], Actor.cli())
        await _issue(after, tenant)
        assert await after.deliverer.deliver_due() == 1
        [request] = receiver.wait_for(1)
        clock.set(clock.now())
        assert Webhook(new.secret).verify(request.body, request.headers)["type"] == (
            "api_key.created"
        )
