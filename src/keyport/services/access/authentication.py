"""Authenticating an API request: the credential — a company key or a personal access token,
found by digest in one cache — then the user it acts as (docs/contract.md §2 order)."""

from __future__ import annotations

import asyncio
import hashlib
from typing import NamedTuple

from keyport.domain import personal_tokens
from keyport.domain.clock import Clock
from keyport.domain.errors import (
    AuthenticationError,
    DeactivatedApiKey,
    ExpiredApiKey,
    ExpiredPersonalToken,
    InvalidActingUserHeader,
    InvalidApiKey,
    MissingActingUserHeader,
    MissingAuthorization,
    PersonalTokensDisabled,
    UnknownActingUser,
)
from keyport.domain.keys import (
    KEY_LENGTH,
    PREFIX,
    KeyState,
    effective_state,
    parse_key_id,
)
from keyport.domain.named_tuples import tuple_new
from keyport.domain.principal import Principal
from keyport.domain.users import User, parse_uuid
from keyport.services.access.cache import Caches
from keyport.services.ports import HotPathReader

_BEARER = "bearer "
# Seconds a key named for refreshing ahead waits, so that the keys named meanwhile are read
# with it. With 10,000 keys in use about 1,000 a second come due, one by one, each soon after
# the previous read returned: read as they came that was ~60 small reads a second
# (measured). Far below the refresh window (cache.REFRESH_WITHIN, SWEEP_HORIZON): a key still
# is read again before its entry expires. A miss is never held back: its request waits for it.
REFRESH_GATHER = 0.25
_KEY_ID = slice(len(PREFIX), len(PREFIX) + 36)
_REFUSED_STATES: dict[KeyState, type[AuthenticationError]] = {
    KeyState.REVOKED: InvalidApiKey,  # a revoked key answers like an unknown one
    KeyState.EXPIRED: ExpiredApiKey,
    KeyState.DEACTIVATED: DeactivatedApiKey,
}
# A personal access token's states, in the same order (revoked > expired > disabled): its
# principal is `inactive` while its company turns tokens off.
_REFUSED_TOKEN_STATES: dict[KeyState, type[AuthenticationError]] = {
    KeyState.REVOKED: InvalidApiKey,
    KeyState.EXPIRED: ExpiredPersonalToken,
    KeyState.DEACTIVATED: PersonalTokensDisabled,
}
# What a personal access token presents in place of a key id: it holds none (it is found by
# its digest alone, and its principal must be a token's).
NO_KEY_ID = ""


def _is_well_formed(token: str) -> bool:
    """A key with a valid checksum, or a personal access token with one. No I/O."""
    if len(token) == KEY_LENGTH:
        return parse_key_id(token) is not None
    return personal_tokens.is_token(token)


def _claimed_key_id(token: str) -> str | None:
    """The key id a bearer token of a credential's length claims; None for any other length."""
    if len(token) == KEY_LENGTH:
        return token[_KEY_ID]
    if len(token) == personal_tokens.TOKEN_LENGTH:
        return NO_KEY_ID
    return None


def is_presented_by(principal: Principal, key_id: str) -> bool:
    """The principal found by a digest is the one the token claims: the key of that id, or a
    personal access token for a token (unknown key and wrong secret then answer alike)."""
    return principal.key_id == key_id if key_id else principal.is_token


def bearer_token(authorization: str | None) -> str:
    """The token of `Bearer <token>`; MissingAuthorization or InvalidApiKey otherwise."""
    if authorization is None or not authorization.strip():
        raise MissingAuthorization()
    if authorization[:7].lower() != _BEARER:
        raise InvalidApiKey()
    return authorization[7:].strip()


class PresentedKey(NamedTuple):
    """A bearer token of a key's length, as the caches know it: its digest and claimed id.
    (Not checked further: a token that is no key is simply never found.)"""

    digest: str
    key_id: str


def presented_key_of(digest: str, key_id: str) -> PresentedKey:
    """`PresentedKey(...)` at a third of the cost (domain/named_tuples.py)."""
    return tuple_new(PresentedKey, (digest, key_id))


def presented_key(authorization: str | None) -> PresentedKey | None:
    """The key a header presents, for a cache lookup; None for anything that cannot be one."""
    try:
        return presented_key_or_refusal(authorization)
    except (MissingAuthorization, InvalidApiKey):
        return None


def presented_key_or_refusal(authorization: str | None) -> PresentedKey:
    """`presented_key`, raising what `Authenticator.authenticate` answers for a header that
    cannot hold a credential (missing, not a bearer token, neither a key's nor a token's
    length)."""
    token = bearer_token(authorization)
    key_id = _claimed_key_id(token)
    if key_id is None:
        raise InvalidApiKey()
    digest = hashlib.sha256(token.encode()).hexdigest()
    return presented_key_of(digest, key_id)


_BEARER_BYTES = b"Bearer "
_SPACE = ord(" ")  # ASCII whitespace is this or below
_KEY_ID_BYTES = slice(_KEY_ID.start + len(_BEARER_BYTES), _KEY_ID.stop + len(_BEARER_BYTES))
_KEY_VALUE_LENGTH = len(_BEARER_BYTES) + KEY_LENGTH
_TOKEN_VALUE_LENGTH = len(_BEARER_BYTES) + personal_tokens.TOKEN_LENGTH


def presented_key_in(value: bytes) -> PresentedKey | None:
    """`presented_key` of an Authorization header's raw value. The form every client sends,
    `Bearer <key>` (or `Bearer <token>`) with nothing around it, is read from the bytes without
    decoding and re-encoding the credential (a client cycling through many keys reads one at
    every request); anything else goes through `presented_key`. Alike for every ASCII value; a
    value with other bytes is never a credential either way."""
    size = len(value)
    if (
        size in (_KEY_VALUE_LENGTH, _TOKEN_VALUE_LENGTH)
        and value.startswith(_BEARER_BYTES)
        and value[len(_BEARER_BYTES)] > _SPACE  # nothing `bearer_token` would strip
        and value[-1] > _SPACE
        and value.isascii()
    ):
        digest = hashlib.sha256(value[len(_BEARER_BYTES) :]).hexdigest()
        key_id = value[_KEY_ID_BYTES].decode() if size == _KEY_VALUE_LENGTH else NO_KEY_ID
        return presented_key_of(digest, key_id)
    return presented_key(value.decode("latin-1"))


def _acting_user_id(principal: Principal, header: str | None, *, required: bool) -> str:
    """The id of the user named in the user header, else the owner's where that is allowed.
    A personal access token always acts as its own user (a header naming anyone else was
    refused before this)."""
    if principal.is_token:
        return principal.owner_id
    if header is None or not header.strip():
        if required:
            raise MissingActingUserHeader()
        return principal.owner_id
    parsed = parse_uuid(header.strip())
    if parsed is None:
        raise InvalidActingUserHeader()
    return parsed


def _of_company(user: User | None, company_id: str) -> User:
    """The acting user, who must exist and belong to the key's company (else 403, alike)."""
    if user is None or user.company_id != company_id:
        raise UnknownActingUser()
    return user


def _retrieved(read: asyncio.Future[User | None]) -> None:
    """A failed background refresh has no one waiting: the next miss reads (and fails) again."""
    if not read.cancelled():
        read.exception()


class Authenticator:
    def __init__(
        self,
        reader: HotPathReader,
        caches: Caches,
        clock: Clock,
        *,
        refresh_gather: float = REFRESH_GATHER,
    ) -> None:
        self._reader = reader
        self._principals = caches.principals
        self._users = caches.users
        self._clock = clock
        self._principal_fills: dict[str, asyncio.Future[Principal | None]] = {}
        self._queued: list[str] = []  # digests missed, for the next read
        self._loader: asyncio.Task[None] | None = None
        self._refresh_gather = refresh_gather
        self._gathering: asyncio.TimerHandle | None = None  # refreshes to read when it fires
        self._user_fills: dict[str, asyncio.Future[User | None]] = {}

    async def authenticate(self, authorization: str | None) -> Principal:
        """The key's principal, or the first error of docs/contract.md §2's table that applies.

        A cache hit costs one SHA-256 and one dict lookup. The checksum is checked only on a
        miss: a key that fails it can never be in the cache, and is refused before any I/O.
        """
        token = bearer_token(authorization)
        key_id = _claimed_key_id(token)
        if key_id is None:
            raise InvalidApiKey()
        digest = hashlib.sha256(token.encode()).hexdigest()
        found, principal = self._cached_principal(digest)
        if not found:
            if not _is_well_formed(token):
                raise InvalidApiKey()  # malformed or bad checksum
            principal = await self._load_principal(digest)
        return self.check(principal, key_id)

    def verify_now(self, presented: PresentedKey, authorization: str | None) -> Principal | None:
        """`authenticate` for a credential read from its header (`presented_key`) when it needs
        no I/O: its principal, or the refusal raised (a credential the cache knows, a checksum
        that fails); None for a miss, which only `authenticate` can answer."""
        found, principal = self._cached_principal(presented.digest, count_miss=False)
        if not found:
            if not _is_well_formed(bearer_token(authorization)):
                raise InvalidApiKey()  # malformed or bad checksum: never in the database
            return None
        return self.check(principal, presented.key_id)

    def _cached_principal(
        self, digest: str, *, count_miss: bool = True
    ) -> tuple[bool, Principal | None]:
        found = self._principals.lookup(digest, count_miss=count_miss)
        if self._principals.due and self._gathering is None:
            self._gathering = asyncio.get_running_loop().call_later(
                self._refresh_gather, self._refresh_ahead
            )
        return found

    def check(self, principal: Principal | None, key_id: str) -> Principal:
        # Unknown digest and a digest of another key id answer alike: no oracle for either.
        if principal is None or not is_presented_by(principal, key_id):
            raise InvalidApiKey()
        state = effective_state(principal.status, principal.expires_at <= self._clock.time())
        if state is not KeyState.ACTIVE:
            refusals = _REFUSED_TOKEN_STATES if principal.is_token else _REFUSED_STATES
            raise refusals[state]()
        return principal

    def refused_key_id(self, authorization: str | None) -> str | None:
        """The id of the key or token that `authenticate` just refused for its state (expired,
        deactivated, disabled): a token holds no id, its cached principal does."""
        presented = presented_key(authorization)
        if presented is None:
            return None
        if presented.key_id:
            return presented.key_id
        _, principal = self._principals.lookup(presented.digest, count_miss=False)
        return principal.key_id if principal is not None else None

    async def _load_principal(self, digest: str) -> Principal | None:
        """One database read per digest however many requests wait for it, and one read for
        all the digests missed while the previous read was on its way (many keys)."""
        pending = self._principal_fills.get(digest)
        if pending is None:
            pending = asyncio.get_running_loop().create_future()
            self._principal_fills[digest] = pending
            self._queued.append(digest)
            if self._loader is None:
                self._loader = asyncio.create_task(self._load_queued())
        return await asyncio.shield(pending)

    def _refresh_ahead(self) -> None:
        """Queue the cached principals named for refreshing (hit late in their life, or swept)
        since the gathering began for the next batched read; the requests that named them went
        on with the cached ones."""
        self._gathering = None
        loop = asyncio.get_running_loop()
        for digest in self._principals.take_due():
            if digest not in self._principal_fills:
                self._principal_fills[digest] = loop.create_future()
                self._queued.append(digest)
        if self._queued and self._loader is None:
            self._loader = asyncio.create_task(self._load_queued())

    async def _load_queued(self) -> None:
        batch: list[str] = []
        try:
            while self._queued:
                batch, self._queued = self._queued, []
                generation = self._principals.generation  # before the read: see TtlCache
                try:
                    if len(batch) == 1:
                        found = {batch[0]: await self._reader.principal_by_digest(batch[0])}
                    else:
                        found = await self._reader.principals_by_digests(batch)
                except Exception as error:
                    for digest in batch:
                        future = self._principal_fills.pop(digest)
                        future.set_exception(error)
                        future.exception()  # silence "never retrieved" when nobody waits
                    continue
                for digest in batch:
                    principal = found.get(digest)
                    self._principals.store(digest, principal, generation)
                    self._principal_fills.pop(digest).set_result(principal)
                batch = []
        except BaseException:  # cancelled (shutdown): so are the waiting reads
            for digest in [*batch, *self._queued]:
                waiting = self._principal_fills.get(digest)
                if waiting is not None and not waiting.done():
                    del self._principal_fills[digest]
                    waiting.cancel()
            self._queued = []
            raise
        finally:
            self._loader = None

    async def acting_user(
        self, principal: Principal, header: str | None, *, required: bool
    ) -> User:
        """The user a request acts as: the one named, else the owner where that is allowed."""
        user = await self.company_user(
            principal.company_id, _acting_user_id(principal, header, required=required)
        )
        return _of_company(user, principal.company_id)

    def acting_user_now(
        self, principal: Principal, header: str | None, *, required: bool
    ) -> User | None:
        """`acting_user` when the cache can say: the user, or the refusal raised; None for a
        miss."""
        user_id = _acting_user_id(principal, header, required=required)
        found, user = self._cached_user(user_id, count_miss=False)
        if not found:
            return None
        return _of_company(user, principal.company_id)

    async def company_user(self, company_id: str, user_id: str) -> User | None:
        found, user = self._cached_user(user_id)
        if not found:
            user = await asyncio.shield(self._fill_user(user_id))
        if user is None or user.company_id != company_id:
            return None
        return user

    def _cached_user(self, user_id: str, *, count_miss: bool = True) -> tuple[bool, User | None]:
        found = self._users.lookup(user_id, count_miss=count_miss)
        if self._users.due:
            for due in self._users.take_due():
                self._fill_user(due)  # in the background; this request goes on with `user`
        return found

    def _fill_user(self, user_id: str) -> asyncio.Future[User | None]:
        """One database read of a user however many requests want it meanwhile (when the
        company owner's entry expires, every request in flight would read it otherwise)."""
        pending = self._user_fills.get(user_id)
        if pending is None:
            pending = self._user_fills[user_id] = asyncio.ensure_future(self._read_user(user_id))
            pending.add_done_callback(_retrieved)
        return pending

    async def _read_user(self, user_id: str) -> User | None:
        try:
            generation = self._users.generation  # before the read: see TtlCache
            user = await self._reader.user_by_id(user_id)
            self._users.store(user_id, user, generation)
            return user
        finally:
            del self._user_fills[user_id]
