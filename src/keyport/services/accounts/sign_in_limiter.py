"""Limits on dashboard sign-ins, so that passwords cannot be guessed and nobody can lock an
account out by guessing wrong on purpose.

Three buckets (services/access/rate_limits.py: in process, or in Redis shared by every process):

- the (account, IP) pair: `max_failures` at once, as many again per window; when it is
  spent, that IP may not try that account until a token is back (429);
- the IP across all accounts: `ip_max_failures` per window, against password spraying;
- the account across all IPs: never a block, since then anyone could lock anyone out. After
  a few failures every further attempt waits, 1 s, 2 s, 4 s, up to 10 s: guessing slows to a
  crawl, the owner's right password from an IP without failures still signs in.

Each attempt reserves its tokens atomically before the password is checked (argon2 takes
long enough that parallel attempts would otherwise all pass a check-then-record), and a
successful sign-in gives them back: only failures count.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from keyport.domain.errors import KeyportError
from keyport.domain.rate_limits import Policy, whole_seconds
from keyport.services.access.rate_limits import BucketStore

Sleep = Callable[[float], Awaitable[None]]


class TooManySignInAttempts(KeyportError):
    message = "Too many failed sign-in attempts. Please wait a few minutes and try again."

    def __init__(self, retry_after: int) -> None:
        super().__init__()
        self.retry_after = retry_after


@dataclass(frozen=True)
class SignInLimits:
    max_failures: int = 10  # per (account, IP) and window
    ip_max_failures: int = 30  # per IP, across accounts, and window
    window: float = 15 * 60.0  # seconds
    free_failures: int = 3  # per account before attempts are slowed down
    first_delay: float = 1.0  # seconds; doubles with every further failure
    max_delay: float = 10.0

    def delay_after(self, failures: float) -> float:
        """How long an attempt on an account waits after this many recent failures."""
        beyond = int(failures) - self.free_failures
        if beyond < 0 or self.max_delay <= 0:
            return 0.0
        return float(min(self.max_delay, self.first_delay * 2 ** min(beyond, 30)))


@dataclass(frozen=True)
class Reservation:
    """The tokens one attempt holds; given back when it succeeds."""

    buckets: tuple[tuple[str, Policy], ...]
    delay: float


def _account(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


class SignInLimiter:
    def __init__(
        self, store: BucketStore, limits: SignInLimits, *, sleep: Sleep = asyncio.sleep
    ) -> None:
        self._store = store
        self._limits = limits
        self._sleep = sleep
        self._pair = Policy.per_window(limits.max_failures, limits.window)
        self._ip = Policy.per_window(limits.ip_max_failures, limits.window)
        # The account's bucket only measures recent failures; its size bounds the delay's count.
        self._account = Policy.per_window(max(1, limits.free_failures + 10), limits.window)

    async def reserve(self, ip: str | None, email: str) -> Reservation:
        """Takes this attempt's tokens, or raises TooManySignInAttempts having taken none."""
        account = _account(email)
        refusable = [(f"sign-in:{account}:{ip or '-'}", self._pair)]
        if ip:
            refusable.append((f"sign-in-ip:{ip}", self._ip))
        taken: list[tuple[str, Policy]] = []
        for key, policy in refusable:
            decision = await self._store.take(key, policy)
            if not decision.allowed:
                await self._give_back(taken)
                raise TooManySignInAttempts(whole_seconds(decision.retry_after))
            taken.append((key, policy))
        account_key = f"sign-in-account:{account}"
        decision = await self._store.take(account_key, self._account)
        if decision.allowed:
            taken.append((account_key, self._account))
        recent_failures = self._account.burst - decision.tokens - (1 if decision.allowed else 0)
        return Reservation(tuple(taken), self._limits.delay_after(recent_failures))

    async def wait(self, reservation: Reservation) -> None:
        """The account's delay, before the password is checked."""
        if reservation.delay > 0:
            await self._sleep(reservation.delay)

    async def succeeded(self, reservation: Reservation) -> None:
        """A successful sign-in is not a failure: every token it held goes back."""
        await self._give_back(reservation.buckets)

    async def _give_back(
        self, buckets: list[tuple[str, Policy]] | tuple[tuple[str, Policy], ...]
    ) -> None:
        for key, policy in buckets:
            await self._store.give_back(key, policy)
