"""Fixtures shared by integration test modules: a signed-in owner; webhooks to loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from keyport.bootstrap import Container
from keyport.domain.clock import FixedClock
from tests.conftest import Tenant
from tests.support.admin import dashboard, sign_in
from tests.support.containers import webhook_container
from tests.support.receiver import Receiver, webhook_receiver


@pytest.fixture
async def owner(
    container: Container, tenant: Tenant
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A browser signed in as the owner of `tenant`, and its CSRF token."""
    async with dashboard(container) as http:
        yield http, await sign_in(http, tenant.owner.email, "owner-password-1")


@pytest.fixture
async def hooks(database_url: str, clock: FixedClock) -> AsyncIterator[Container]:
    """A container whose webhooks may go to loopback, where the test receiver listens."""
    async with webhook_container(database_url, clock) as built:
        yield built


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as running:
        yield running
