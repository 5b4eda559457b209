"""Limiting failed sign-ins per client IP and per account, so passwords cannot be guessed.

Each key (`ip:<address>`, `account:<hash of email>`) counts failures in a window that starts
at its first failure. At `max_failures` the key is refused until the window ends. Counters are
in process memory by default and in Redis when configured (shared by every process).
"""

from __future__ import annotations

import hashlib
import math
from typing import Protocol

from keyport.domain.clock import Clock
from keyport.domain.errors import KeyportError


class TooManySignInAttempts(KeyportError):
    message = "Too many failed sign-in attempts. Please wait a few minutes and try again."

    def __init__(self, retry_after: int) -> None:
        super().__init__()
        self.retry_after = retry_after


class AttemptCounter(Protocol):
    async def failures(self, key: str) -> tuple[int, float]:
        """(failures in the current window, seconds until it ends)."""
        ...

    async def add_failure(self, key: str, window: float) -> None: ...
    async def clear(self, key: str) -> None: ...


class MemoryAttemptCounter:
    """Counters in this process: right for one process, or as many limits as processes."""

    MAX_KEYS = 100_000

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._counts: dict[str, tuple[int, float]] = {}  # key → (failures, window end)

    async def failures(self, key: str) -> tuple[int, float]:
        count, ends = self._counts.get(key, (0, 0.0))
        remaining = ends - self._clock.time()
        return (count, remaining) if remaining > 0 else (0, 0.0)

    async def add_failure(self, key: str, window: float) -> None:
        now = self._clock.time()
        count, ends = self._counts.get(key, (0, 0.0))
        if ends <= now:
            count, ends = 0, now + window
        if len(self._counts) >= self.MAX_KEYS:
            self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
        self._counts[key] = (count + 1, ends)

    async def clear(self, key: str) -> None:
        self._counts.pop(key, None)


def _account_key(email: str) -> str:
    return "account:" + hashlib.sha256(email.strip().lower().encode()).hexdigest()


class SignInLimiter:
    def __init__(self, counter: AttemptCounter, *, max_failures: int, window: float) -> None:
        self._counter = counter
        self._max_failures = max_failures
        self._window = window

    async def check(self, ip: str | None, email: str) -> None:
        """TooManySignInAttempts when the IP or the account has failed too often."""
        for key in self._keys(ip, email):
            count, remaining = await self._counter.failures(key)
            if count >= self._max_failures:
                raise TooManySignInAttempts(retry_after=max(1, math.ceil(remaining)))

    async def failed(self, ip: str | None, email: str) -> None:
        for key in self._keys(ip, email):
            await self._counter.add_failure(key, self._window)

    async def succeeded(self, email: str) -> None:
        """The account's count starts over; the IP's does not (one IP, many accounts)."""
        await self._counter.clear(_account_key(email))

    @staticmethod
    def _keys(ip: str | None, email: str) -> list[str]:
        keys = [_account_key(email)]
        if ip:
            keys.append(f"ip:{ip}")
        return keys
