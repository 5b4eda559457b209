"""Fixtures shared by the integration tests that deliver webhooks to a receiver on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from keyport.bootstrap import Container
from keyport.domain.clock import FixedClock
from tests.support.containers import webhook_container
from tests.support.receiver import Receiver, webhook_receiver


@pytest.fixture
async def hooks(database_url: str, clock: FixedClock) -> AsyncIterator[Container]:
    """A container whose webhooks may go to loopback, where the test receiver listens."""
    async with webhook_container(database_url, clock) as built:
        yield built


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as running:
        yield running
