"""Process-local caches for the request path: key principals and acting users.

A hit costs a dict lookup. Every entry lives at most `ttl` seconds, which bounds staleness if
an eviction from another process is lost. Evictions bump a generation counter; a fill that
started before an eviction is dropped instead of stored, so a revoke that lands while a
database read is in flight cannot be undone by that read.

Principals are refreshed ahead: a hit in the last REFRESH_WITHIN seconds of an entry's life
(the second half, for a TTL under twice that) names the key in `PrincipalCache.due`, and the
authenticator reads it again in the background (the keys named within a quarter of a second
in one read: authentication.REFRESH_GATHER), so a key in use never waits for the database when
its entry expires. A key used earlier in its entry's life but not hit in that window (a client
calling every few seconds among many keys) is named in `due` by a sweep SWEEP_HORIZON seconds
before its entry expires, so it is read again ahead too; an entry not used since it was stored
is not. A refreshed entry is read afresh, so it is never staler than the TTL says (a value read
again unchanged keeps its entry and object, with a new TTL). (The window was the second half
of the life: with 10,000 keys in use that read each key every ~6 s for a 10 s TTL; within 2 s,
every ~9 s, a third fewer reads, and the same staleness bound.)

`lookup(..., count_miss=False)` is for a look that the usual lookup follows after a miss (the
gate's express lane, web/gate/express.py), so that a miss is counted once. (A hit is counted twice
when the express lane hands its request on for another reason: a key cached, its acting user
not; rare once the caches are warm.)

Acting users are refreshed ahead the same way, without the sweep (`UserCache`): a company's
few users are hit all the time.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from keyport.domain.principal import Principal
from keyport.domain.users import User

V = TypeVar("V")

KEY = "key"
USER = "user"
COMPANY = "company"
SWEEP_HORIZON = 1.0  # seconds before expiry a used entry is read again if no late hit did it
SWEEP_EVERY = 0.25  # seconds between two sweeps (on the request path, amortised O(1))
REFRESH_WITHIN = 2.0  # seconds before expiry a hit asks for its entry to be read again


class _Entry(Generic[V]):
    """A cached value, when it expires, and whether it was hit since it was stored (read by
    PrincipalCache's sweep). One object: with 10,000 keys in use an entry is out of the CPU's
    caches at each hit, and a flag in it costs no second lookup (a set of used keys did)."""

    __slots__ = ("expires", "used", "value")

    def __init__(self, value: V | None, expires: float) -> None:
        self.value = value
        self.expires = expires
        self.used = False


class TtlCache(Generic[V]):
    """A bounded dict whose entries expire; `None` values are cached negative results."""

    def __init__(
        self,
        ttl: float,
        *,
        negative_ttl: float = 0.0,
        max_entries: int = 1_000_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self.max_entries = max_entries
        self._monotonic = monotonic
        self._entries: dict[str, _Entry[V]] = {}
        self.generation = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, key: str) -> tuple[bool, V | None]:
        """(found, value); found is False on a miss or an expired entry."""
        entry = self._entries.get(key)
        if entry is not None and entry.expires > self._monotonic():
            self.hits += 1
            return True, entry.value
        self.misses += 1
        return False, None

    def store(self, key: str, value: V | None, generation: int) -> None:
        if generation != self.generation:
            return  # something was evicted while this value was being read
        if value is None and self.negative_ttl <= 0:
            return
        ttl = self.ttl if value is not None else self.negative_ttl
        expires = self._monotonic() + ttl
        entry = self._entries.get(key)
        if entry is not None and value is not None and entry.value == value:
            # Read again and unchanged (a refresh, nearly always): the entry and its value are
            # kept, the new copy dropped at once. With 10,000 keys in use that is ~1,000
            # principals a second that would otherwise each live a TTL, scattered among the
            # short-lived objects of every request.
            entry.expires, entry.used = expires, False
            return
        if len(self._entries) >= self.max_entries:
            self._drop_expired_or_clear()
        self._entries[key] = _Entry(value, expires)

    def evict_where(self, matches: Callable[[V], bool]) -> None:
        self.generation += 1
        doomed = [k for k, e in self._entries.items() if e.value is not None and matches(e.value)]
        for key in doomed:
            del self._entries[key]

    def evict(self, key: str) -> None:
        self.generation += 1
        self._entries.pop(key, None)

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()

    def _drop_expired_or_clear(self) -> None:
        now = self._monotonic()
        self._entries = {k: e for k, e in self._entries.items() if e.expires > now}
        if len(self._entries) >= self.max_entries:
            self._entries.clear()


class _RefreshedAhead(TtlCache[V]):
    """A TtlCache whose entries hit late in their life are named in `due`, once per entry,
    for the owner to read again in the background (`take_due`)."""

    def __init__(self, ttl: float, **options: Any) -> None:
        super().__init__(ttl, **options)
        self._refresh_after = min(ttl / 2, REFRESH_WITHIN)  # seconds left: refresh when hit
        self.due: dict[str, None] = {}  # keys hit late in their life, to read again
        self._asked: dict[str, float] = {}  # key → expiry of the entry already asked for

    def _ask_once(self, key: str, expires: float) -> None:
        """Name `key` in `due`, unless its entry (the one expiring at `expires`) already was."""
        if self._asked.get(key) != expires:
            self._asked[key] = expires
            self.due[key] = None

    def take_due(self) -> list[str]:
        """The keys to read again, once each."""
        due = list(self.due)
        self.due.clear()
        if len(self._asked) > 2 * max(len(self._entries), 1024):
            self._asked.clear()  # forgets entries long gone; at worst one extra refresh each
        return due

    def clear(self) -> None:
        super().clear()
        self.due.clear()


class PrincipalCache(_RefreshedAhead[Principal]):
    """Key digest → Principal, with an index to evict by key id, refreshed ahead."""

    def __init__(
        self,
        ttl: float,
        *,
        negative_ttl: float,
        max_entries: int = 1_000_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            ttl, negative_ttl=negative_ttl, max_entries=max_entries, monotonic=monotonic
        )
        self._digest_by_key_id: dict[str, str] = {}
        self._expiring: deque[tuple[float, str]] = deque()  # (expiry, digest), stored order
        self._next_sweep = 0.0

    def lookup(self, key: str, *, count_miss: bool = True) -> tuple[bool, Principal | None]:
        now = self._monotonic()
        if now >= self._next_sweep:
            self._sweep(now)
        entry = self._entries.get(key)
        if entry is not None:
            left = entry.expires - now
            if left > 0:
                self.hits += 1
                if entry.value is not None:
                    if left >= self._refresh_after:
                        entry.used = True
                    else:
                        self._ask_once(key, entry.expires)
                return True, entry.value
        if count_miss:
            self.misses += 1
        return False, None

    def _sweep(self, now: float) -> None:
        """Name the used entries that expire within SWEEP_HORIZON and were not asked for."""
        self._next_sweep = now + SWEEP_EVERY
        expiring, horizon = self._expiring, now + SWEEP_HORIZON
        while expiring and expiring[0][0] <= horizon:
            expires, key = expiring.popleft()
            entry = self._entries.get(key)
            if entry is None or entry.expires != expires:
                continue  # evicted, or stored again since
            if entry.used and expires > now:
                self._ask_once(key, expires)

    def store(self, key: str, value: Principal | None, generation: int) -> None:
        super().store(key, value, generation)
        if value is not None and generation == self.generation:
            if self._digest_by_key_id.get(value.key_id) != key:  # else the kept one is equal
                self._digest_by_key_id[value.key_id] = key
            self._expiring.append((self._entries[key].expires, key))  # stored afresh: unused

    def evict_key(self, key_id: str) -> None:
        digest = self._digest_by_key_id.pop(key_id, None)
        self.generation += 1
        if digest is not None:
            self._entries.pop(digest, None)

    def evict_company(self, company_id: str) -> None:
        self.evict_where(lambda p: p.company_id == company_id)

    def clear(self) -> None:
        super().clear()
        self._digest_by_key_id.clear()
        self._expiring.clear()


class UserCache(_RefreshedAhead[User]):
    """User id → User, refreshed ahead (no sweep: a company's few users are hit all the time)."""

    def lookup(self, key: str, *, count_miss: bool = True) -> tuple[bool, User | None]:
        entry = self._entries.get(key)
        if entry is not None:
            left = entry.expires - self._monotonic()
            if left > 0:
                self.hits += 1
                if left < self._refresh_after:
                    self._ask_once(key, entry.expires)
                return True, entry.value
        if count_miss:
            self.misses += 1
        return False, None


class Caches:
    """The caches of one process, and the one place an invalidation is applied to them."""

    def __init__(self, *, ttl: float = 10.0, negative_ttl: float = 2.0) -> None:
        self.principals = PrincipalCache(ttl, negative_ttl=negative_ttl)
        self.users = UserCache(ttl)

    def invalidate(self, kind: str, target: str) -> None:
        if kind == KEY:
            self.principals.evict_key(target)
        elif kind == USER:
            self.users.evict(target)
            # A personal access token acts as its user: a removed user's tokens must stop at
            # once (read again, they are found no more).
            self.principals.evict_where(lambda p: p.is_token and p.owner_id == target)
        elif kind == COMPANY:
            self.principals.evict_company(target)
            self.users.evict_where(lambda u: u.company_id == target)
        else:
            self.principals.clear()
            self.users.clear()

    def clear(self) -> None:
        self.principals.clear()
        self.users.clear()
