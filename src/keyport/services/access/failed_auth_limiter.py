"""Failed API authentications per client IP, so that guessing keys is pointless.

An IP here is a place (domain/client_places.py): an IPv4 address, or an IPv6 address's /64,
which one subscriber can fill with fresh addresses at will. Each place has a token bucket of
`limit` failures that refills `limit` a minute. A failed authentication (any 401) takes a
token; once the bucket is empty the place is refused with 429 before its key is even looked
at, until a token is back: a flood of guesses earns 429s at about one try a second, while
every other place, valid keys and all, is unaffected.

The bucket is in the shared store when there is one, so processes count failures together.
Whether a place is refused is kept in this process (a dict lookup on every request, no I/O):
another process learns it at that place's next failure there.
"""

from __future__ import annotations

from collections.abc import Callable

from keyport.domain.client_places import place_of
from keyport.domain.rate_limits import Policy
from keyport.services.access.rate_limits import BucketStore

MAX_BLOCKED = 100_000


class FailedAuthLimiter:
    def __init__(self, store: BucketStore, limit: int, now: Callable[[], float]) -> None:
        self._store = store
        self._policy = Policy(limit, limit)
        self._now = now
        self._blocked: dict[str, float] = {}  # ip → when it may try again

    def refused_for(self, ip: str | None) -> float | None:
        """Seconds this IP must still wait, or None if it may try."""
        if ip is None or not self._blocked:
            return None
        place = place_of(ip)
        until = self._blocked.get(place)
        if until is None:
            return None
        wait = until - self._now()
        if wait > 0:
            return wait
        del self._blocked[place]
        return None

    async def failed(self, ip: str | None) -> None:
        place = place_of(ip)
        if place is None:
            return
        decision = await self._store.take("fail:" + place, self._policy)
        if decision.retry_after > 0:  # less than one token left: the next try would fail
            self._block(place, decision.retry_after)

    def failed_now(self, ip: str | None) -> bool:
        """`failed` when it needs no I/O (this process's buckets, a lease): True, counted;
        False, having counted nothing (whoever must count it then awaits `failed`)."""
        if ip is None:
            return True
        decision = self._store.take_now("fail:" + ip, self._policy)
        if decision is None:
            return False
        if decision.retry_after > 0:
            self._block(ip, decision.retry_after)
        return True

    def _block(self, ip: str, seconds: float) -> None:
        now = self._now()
        if len(self._blocked) >= MAX_BLOCKED:
            self._blocked = {k: v for k, v in self._blocked.items() if v > now}
        self._blocked[ip] = now + seconds
