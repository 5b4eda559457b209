"""Cache misses on the request path: one read per digest however many requests wait for it,
one read for all the digests missed while the previous read was on its way, and a revoke
during a read never undone by that read."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from keyport.domain.clock import FixedClock
from keyport.domain.errors import InvalidApiKey
from keyport.domain.keys import PREFIX, KeyStatus, generate_key
from keyport.domain.principal import Principal
from keyport.domain.users import User
from keyport.services.access.authentication import Authenticator
from keyport.services.access.cache import Caches, PrincipalCache
from tests.support.stepping import Ticking, until

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
COMPANY = str(uuid.uuid4())
OWNER = str(uuid.uuid4())


class SlowReader:
    """Principals from a dict; each read takes until the test lets it go (`release`)."""

    def __init__(self) -> None:
        self.principals: dict[str, Principal] = {}
        self.reads: list[list[str]] = []
        self.gate = asyncio.Event()
        self.fail: Exception | None = None

    async def _read(self, digests: Sequence[str]) -> dict[str, Principal | None]:
        self.reads.append(list(digests))
        await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return {digest: self.principals.get(digest) for digest in digests}

    async def principal_by_digest(self, digest: str) -> Principal | None:
        return (await self._read([digest]))[digest]

    async def principals_by_digests(self, digests: Sequence[str]) -> dict[str, Principal | None]:
        return await self._read(digests)

    async def user_by_id(self, user_id: str) -> User | None:
        return None

    async def close(self) -> None:
        return None


def add_keys(reader: SlowReader, count: int) -> list[str]:
    keys = []
    for _ in range(count):
        key_id = uuid.uuid4()
        key = generate_key(key_id)
        digest = hashlib.sha256(key.encode()).hexdigest()
        reader.principals[digest] = Principal(
            str(key_id), COMPANY, OWNER, KeyStatus.ACTIVE, NOW.timestamp() + 3600
        )
        keys.append(key)
    return keys


def key_id(key: str) -> str:
    return key[len(PREFIX) : len(PREFIX) + 36]


def setup() -> tuple[SlowReader, Caches, Authenticator]:
    reader, caches = SlowReader(), Caches(ttl=60)
    return reader, caches, Authenticator(reader, caches, FixedClock(NOW))


async def test_misses_of_many_keys_at_once_are_one_read_and_each_gets_its_own() -> None:
    reader, caches, authenticator = setup()
    keys = add_keys(reader, 50)
    reader.gate.set()
    principals = await asyncio.gather(
        *(authenticator.authenticate(f"Bearer {key}") for key in keys * 2)
    )
    assert len(reader.reads) == 1 and len(reader.reads[0]) == 50
    assert [p.key_id for p in principals] == [key_id(key) for key in keys] * 2
    assert len(caches.principals) == 50
    await authenticator.authenticate(f"Bearer {keys[7]}")  # cached now
    assert len(reader.reads) == 1


async def test_digests_missed_while_a_read_is_on_its_way_go_in_the_next_read() -> None:
    reader, _, authenticator = setup()
    keys = add_keys(reader, 5)
    first = asyncio.ensure_future(authenticator.authenticate(f"Bearer {keys[0]}"))
    await until(lambda: len(reader.reads) == 1)
    rest = [asyncio.ensure_future(authenticator.authenticate(f"Bearer {k}")) for k in keys]
    await asyncio.sleep(0)
    assert len(reader.reads) == 1  # waiting for the read on its way
    reader.gate.set()
    await asyncio.gather(first, *rest)
    assert reader.reads[0] == [hashlib.sha256(keys[0].encode()).hexdigest()]
    assert len(reader.reads) == 2 and len(reader.reads[1]) == 4  # keys[0] was not read again


async def test_a_revoke_during_a_read_is_not_undone_by_it() -> None:
    reader, caches, authenticator = setup()
    keys = add_keys(reader, 3)
    pending = [asyncio.ensure_future(authenticator.authenticate(f"Bearer {k}")) for k in keys]
    await until(lambda: len(reader.reads) == 1)
    caches.invalidate("key", key_id(keys[1]))  # revoked while the read is on its way
    reader.gate.set()
    await asyncio.gather(*pending)  # the requests already in flight pass, as before
    assert len(caches.principals) == 0  # but nothing read before the revoke is kept
    await authenticator.authenticate(f"Bearer {keys[1]}")
    assert len(reader.reads) == 2


async def test_a_failed_read_fails_its_waiters_and_the_next_request_reads_again() -> None:
    reader, caches, authenticator = setup()
    keys = add_keys(reader, 2)
    reader.fail = ConnectionError("database down")
    reader.gate.set()
    results = await asyncio.gather(
        *(authenticator.authenticate(f"Bearer {k}") for k in keys), return_exceptions=True
    )
    assert all(isinstance(r, ConnectionError) for r in results)
    reader.fail = None
    assert (await authenticator.authenticate(f"Bearer {keys[0]}")).key_id == key_id(keys[0])
    assert len(reader.reads) == 2 and len(caches.principals) == 1


async def test_an_unknown_key_is_refused_after_its_read() -> None:
    reader, _, authenticator = setup()
    add_keys(reader, 1)
    unknown = generate_key(uuid.uuid4())
    reader.gate.set()
    with pytest.raises(InvalidApiKey):
        await authenticator.authenticate(f"Bearer {unknown}")
    assert len(reader.reads) == 1


def setup_with_clock(
    refresh_gather: float = 0.0,
) -> tuple[SlowReader, Caches, Authenticator, Ticking]:
    reader, caches, clock = SlowReader(), Caches(ttl=10), Ticking()
    caches.principals = PrincipalCache(10, negative_ttl=2, monotonic=clock)
    authenticator = Authenticator(reader, caches, FixedClock(NOW), refresh_gather=refresh_gather)
    return reader, caches, authenticator, clock


async def test_a_key_hit_late_in_its_entry_life_is_read_again_without_waiting() -> None:
    reader, _, authenticator, clock = setup_with_clock()
    key = add_keys(reader, 1)[0]
    reader.gate.set()
    await authenticator.authenticate(f"Bearer {key}")
    clock.now += 7.9  # more than REFRESH_WITHIN (2 s) of the 10 s life left: a plain hit
    await authenticator.authenticate(f"Bearer {key}")
    await asyncio.sleep(0)
    assert len(reader.reads) == 1
    reader.gate.clear()  # the refresh read now waits: the request must not
    clock.now += 1.0  # 1.1 s left
    principal = await authenticator.authenticate(f"Bearer {key}")
    assert principal.key_id == key_id(key)
    await until(lambda: len(reader.reads) == 2)  # asked in the background
    await authenticator.authenticate(f"Bearer {key}")  # once per entry, not per hit
    reader.gate.set()
    await until(lambda: not authenticator._principal_fills)  # the refresh was stored
    clock.now += 1.6  # past the old entry's expiry, early in the refreshed one's life
    await authenticator.authenticate(f"Bearer {key}")
    await asyncio.sleep(0)
    assert len(reader.reads) == 2  # the refreshed entry answered: no miss, no third read


async def test_a_revoke_during_a_refresh_is_not_undone_by_it() -> None:
    reader, caches, authenticator, clock = setup_with_clock()
    key = add_keys(reader, 1)[0]
    reader.gate.set()
    await authenticator.authenticate(f"Bearer {key}")
    reader.gate.clear()
    clock.now += 8.5
    await authenticator.authenticate(f"Bearer {key}")  # asks for a refresh
    await until(lambda: len(reader.reads) == 2)
    caches.invalidate("key", key_id(key))  # revoked while the refresh read is on its way
    reader.gate.set()
    await until(lambda: not authenticator._principal_fills)  # the refresh read came back
    assert len(caches.principals) == 0  # the refresh's read came from before the revoke


def digest_of(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def test_a_key_used_early_in_its_entry_life_is_read_again_before_it_expires() -> None:
    # Among many keys a client may call every few seconds and miss its entry's second half:
    # the sweep reads such a key again shortly before expiry, so its next call does not wait.
    reader, _, authenticator, clock = setup_with_clock()
    used, other = add_keys(reader, 2)
    reader.gate.set()
    await authenticator.authenticate(f"Bearer {used}")  # read 1, entry until +10 s
    await authenticator.authenticate(f"Bearer {other}")  # read 2
    clock.now += 2.0
    await authenticator.authenticate(f"Bearer {used}")  # used early: no refresh yet
    clock.now += 7.3  # 0.7 s before both entries expire; neither key is asked for itself
    reader.gate.clear()
    await authenticator.authenticate(f"Bearer {other}")  # a late hit: refreshes `other`
    await until(lambda: len(reader.reads) == 3)
    assert sorted(reader.reads[2]) == sorted([digest_of(used), digest_of(other)])  # swept
    reader.gate.set()
    await until(lambda: not authenticator._principal_fills)
    clock.now += 1.0  # past the first entries' expiry
    await authenticator.authenticate(f"Bearer {used}")
    await asyncio.sleep(0)
    assert len(reader.reads) == 3  # answered by the refreshed entry: no miss


async def test_an_entry_not_used_since_it_was_stored_is_not_read_again() -> None:
    reader, _, authenticator, clock = setup_with_clock()
    idle, busy = add_keys(reader, 2)
    reader.gate.set()
    await authenticator.authenticate(f"Bearer {idle}")  # stored, then never used again
    await authenticator.authenticate(f"Bearer {busy}")
    for _ in range(40):  # 10 s of sweeps, driven by another key's lookups
        clock.now += 0.25
        await authenticator.authenticate(f"Bearer {busy}")
    await until(lambda: not authenticator._principal_fills)
    assert [read for read in reader.reads if digest_of(idle) in read] == [[digest_of(idle)]]
    assert len([read for read in reader.reads if digest_of(busy) in read]) > 1  # refreshed


async def test_keys_named_for_refreshing_while_the_gathering_lasts_are_read_together() -> None:
    reader, _, authenticator, clock = setup_with_clock(refresh_gather=3600.0)
    first, second = add_keys(reader, 2)
    reader.gate.set()
    await authenticator.authenticate(f"Bearer {first}")
    await authenticator.authenticate(f"Bearer {second}")
    clock.now += 8.5  # 1.5 s of the 10 s life left: a hit names its key for refreshing
    await authenticator.authenticate(f"Bearer {first}")
    for _ in range(20):  # the loop runs on: a read started at once would be on its way now
        await asyncio.sleep(0)
    assert len(reader.reads) == 2
    clock.now += 0.1
    await authenticator.authenticate(f"Bearer {second}")
    gathering = authenticator._gathering
    assert gathering is not None and len(reader.reads) == 2
    gathering.cancel()  # its time has come: what the timer calls, without waiting an hour
    authenticator._refresh_ahead()
    await until(lambda: len(reader.reads) == 3)
    assert sorted(reader.reads[2]) == sorted([digest_of(first), digest_of(second)])
    await until(lambda: not authenticator._principal_fills)
    assert authenticator._gathering is None


async def test_a_miss_is_read_at_once_while_refreshes_gather() -> None:
    reader, _, authenticator, clock = setup_with_clock(refresh_gather=3600.0)
    known, unknown = add_keys(reader, 2)
    reader.gate.set()
    await authenticator.authenticate(f"Bearer {known}")
    clock.now += 8.5
    await authenticator.authenticate(f"Bearer {known}")  # named for refreshing: gathering
    principal = await asyncio.wait_for(authenticator.authenticate(f"Bearer {unknown}"), 15)
    assert principal.key_id == key_id(unknown)
    assert reader.reads[1:] == [[digest_of(unknown)]]  # the refresh still gathers
