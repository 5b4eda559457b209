"""Acting users on the request path: one read of a user however many requests miss it at
once, a user hit late in its entry's life read again in the background, and a failed read
that fails its waiters without leaving a fill behind."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from keyport.domain.clock import FixedClock
from keyport.domain.keys import KeyStatus
from keyport.domain.principal import Principal
from keyport.domain.users import User
from keyport.services.access.authentication import Authenticator
from keyport.services.access.cache import Caches, UserCache
from tests.support.stepping import Ticking, until
from tests.support.users import a_user

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
COMPANY = str(uuid.uuid4())
OWNER = a_user(COMPANY, NOW)
PRINCIPAL = Principal(str(uuid.uuid4()), COMPANY, OWNER.id, KeyStatus.ACTIVE, 2e9)


class SlowUsers:
    """Users from a dict; each read waits until the test lets it go (`gate`)."""

    def __init__(self) -> None:
        self.users = {OWNER.id: OWNER}
        self.reads: list[str] = []
        self.gate = asyncio.Event()
        self.fail: Exception | None = None

    async def user_by_id(self, user_id: str) -> User | None:
        self.reads.append(user_id)
        await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return self.users.get(user_id)

    async def principal_by_digest(self, digest: str) -> Principal | None:
        return None

    async def principals_by_digests(self, digests: Sequence[str]) -> dict[str, Principal | None]:
        return {}

    async def close(self) -> None:
        return None


def setup() -> tuple[SlowUsers, Caches, Authenticator, Ticking]:
    reader, caches, clock = SlowUsers(), Caches(ttl=10), Ticking()
    caches.users = UserCache(10, monotonic=clock)
    return reader, caches, Authenticator(reader, caches, FixedClock(NOW)), clock


async def owner(authenticator: Authenticator) -> User:
    return await authenticator.acting_user(PRINCIPAL, None, required=False)


async def test_requests_missing_the_same_user_at_once_share_one_read() -> None:
    reader, caches, authenticator, _ = setup()
    waiting = [asyncio.ensure_future(owner(authenticator)) for _ in range(20)]
    await until(lambda: len(reader.reads) == 1)
    await asyncio.sleep(0)
    reader.gate.set()
    assert await asyncio.gather(*waiting) == [OWNER] * 20
    assert reader.reads == [OWNER.id]
    assert await owner(authenticator) == OWNER  # cached now
    assert reader.reads == [OWNER.id] and caches.users.lookup(OWNER.id) == (True, OWNER)


async def test_a_user_hit_late_in_its_entry_life_is_read_again_without_waiting() -> None:
    reader, _, authenticator, clock = setup()
    reader.gate.set()
    await owner(authenticator)
    clock.now += 7.9  # more than REFRESH_WITHIN (2 s) of the 10 s life left: a plain hit
    await owner(authenticator)
    await asyncio.sleep(0)
    assert reader.reads == [OWNER.id]
    reader.gate.clear()  # the refresh read now waits: the request must not
    clock.now += 1.0  # 1.1 s left
    assert await owner(authenticator) == OWNER
    await until(lambda: len(reader.reads) == 2)  # asked in the background
    await owner(authenticator)  # once per entry, not per hit
    renamed = replace(OWNER, email="new@a.test")
    reader.users[OWNER.id] = renamed
    reader.gate.set()
    await until(lambda: not authenticator._user_fills)  # the refresh was stored
    clock.now += 1.6  # past the old entry's expiry, early in the refreshed one's life
    assert await owner(authenticator) == renamed
    assert len(reader.reads) == 2  # the refreshed entry answered: no miss, no third read


async def test_a_failed_read_fails_its_waiters_and_the_next_request_reads_again() -> None:
    reader, _, authenticator, _ = setup()
    reader.fail = ConnectionError("database down")
    reader.gate.set()
    results = await asyncio.gather(
        *(owner(authenticator) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, ConnectionError) for r in results)
    assert len(reader.reads) == 1 and not authenticator._user_fills
    reader.fail = None
    assert await owner(authenticator) == OWNER
    assert len(reader.reads) == 2


async def test_a_failed_background_refresh_keeps_the_entry_and_is_not_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    reader, _, authenticator, clock = setup()
    reader.gate.set()
    await owner(authenticator)
    reader.fail = ConnectionError("database down")
    clock.now += 8.5
    assert await owner(authenticator) == OWNER  # the cached entry answers
    await until(lambda: len(reader.reads) == 2 and not authenticator._user_fills)
    assert await owner(authenticator) == OWNER
    assert "never retrieved" not in caplog.text
