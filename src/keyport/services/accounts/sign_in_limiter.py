"""Limits on every check of a dashboard secret — a password, a TOTP code, a recovery code, at
sign-in or on the account pages — so that none can be guessed, while the account's holder
still signs in from where they have signed in before.

A place is a client IPv4 address, or an IPv6 address's /64 (domain/client_places.py). Three
buckets (services/access/rate_limits.py: in process, or in Redis shared by every process):

- the (account, place) pair: `max_failures` at once, as many again per window;
- the place across all accounts: `ip_max_failures` per window, against password spraying;
- the account across all places: `account_max_failures` per window, against a botnet whose
  every address guesses a few times. A place the account signed in from successfully within
  `known_for` (30 days) is spared this bucket, so strangers cannot lock the holder out of the
  places they use. The price: during an attack, a new place of the holder's (a new phone
  network, a hotel) is refused too; the way back is the window's end, or a new password set
  by an admin (`keyport user set-password`): the account's count belongs to its password and
  starts over with a new one.

Each check reserves its tokens atomically before the secret is compared (argon2 takes long
enough that parallel checks would otherwise all pass a check-then-record), and a right answer
gives them back: only failures count. A refused check waits for nothing: it is answered 429
at once, and nothing holds a connection open.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from keyport.domain.client_places import KNOWN_FOR, place_of
from keyport.domain.clock import Clock
from keyport.domain.errors import KeyportError
from keyport.domain.rate_limits import Policy, whole_seconds
from keyport.services.access.rate_limits import BucketStore
from keyport.services.ports import UnitOfWorkFactory

Bucket = tuple[str, Policy]


class TooManySignInAttempts(KeyportError):
    message = "Too many failed sign-in attempts. Please wait a few minutes and try again."

    def __init__(self, retry_after: int) -> None:
        super().__init__()
        self.retry_after = retry_after


@dataclass(frozen=True)
class SignInLimits:
    max_failures: int = 10  # per (account, place) and window
    ip_max_failures: int = 30  # per place, across accounts, and window
    account_max_failures: int = 20  # per account, from places it never signed in from
    window: float = 15 * 60.0  # seconds
    known_for: timedelta = KNOWN_FOR  # a successful sign-in makes a place known this long


@dataclass(frozen=True)
class Reservation:
    """The tokens one check holds; given back when it succeeds."""

    buckets: tuple[Bucket, ...]


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


class SignInLimiter:
    def __init__(
        self, store: BucketStore, limits: SignInLimits, uow: UnitOfWorkFactory, clock: Clock
    ) -> None:
        self._store = store
        self._limits = limits
        self._uow = uow
        self._clock = clock
        self._pair = Policy.per_window(limits.max_failures, limits.window)
        self._ip = Policy.per_window(limits.ip_max_failures, limits.window)
        self._account = Policy.per_window(limits.account_max_failures, limits.window)

    async def reserve(self, ip: str | None, email: str) -> Reservation:
        """Takes one check's tokens, or raises TooManySignInAttempts having taken none."""
        place = place_of(ip)
        email = email.strip().lower()
        buckets: list[Bucket] = [(f"sign-in:{_digest(email)}:{place or '-'}", self._pair)]
        if place is not None:
            buckets.append((f"sign-in-ip:{place}", self._ip))
        taken = await self._take_all(buckets, [])
        account = await self._account_bucket(email, place)
        if account is not None:
            taken = await self._take_all([account], taken)
        return Reservation(tuple(taken))

    async def succeeded(self, reservation: Reservation) -> None:
        """A right answer is not a failure: every token it held goes back."""
        await self._give_back(reservation.buckets)

    async def _account_bucket(self, email: str, place: str | None) -> Bucket | None:
        """The account's own bucket, unless the check comes from a place it signed in from
        lately; read only once the cheaper buckets let the check through."""
        password_hash, known = None, False
        if email.isprintable():  # no stored email has a control character (PostgreSQL: no NUL)
            since = self._clock.now() - self._limits.known_for
            async with self._uow() as uow:
                password_hash, known = await uow.team.sign_in_standing(email, place, since)
        if known:
            return None
        return (f"sign-in-account:{_digest(email, password_hash or '')}", self._account)

    async def _take_all(self, buckets: list[Bucket], taken: list[Bucket]) -> list[Bucket]:
        """`taken` and one token of each bucket; on a refusal, all of them given back."""
        for key, policy in buckets:
            decision = await self._store.take(key, policy)
            if not decision.allowed:
                await self._give_back(taken)
                raise TooManySignInAttempts(whole_seconds(decision.retry_after))
            taken = [*taken, (key, policy)]
        return taken

    async def _give_back(self, buckets: list[Bucket] | tuple[Bucket, ...]) -> None:
        for key, policy in buckets:
            await self._store.give_back(key, policy)
