"""Property tests: whatever arrives in `Authorization` or `x-meetergo-api-user-id`, the
authenticator answers with success or one of docs/contract.md §2's errors, never anything else.

Headers reach the authenticator decoded as latin-1 (every byte is a character), so the
strategies draw from all 256 byte values as well as from text near the real formats.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from hypothesis import example, given, settings
from hypothesis import strategies as st

from keyport.domain.clock import FixedClock
from keyport.domain.errors import (
    ActingUserError,
    AuthenticationError,
    DeactivatedApiKey,
    ExpiredApiKey,
    InvalidActingUserHeader,
    InvalidApiKey,
    MissingActingUserHeader,
    MissingAuthorization,
    UnknownActingUser,
)
from keyport.domain.keys import BASE62, PREFIX, KeyStatus, checksum, generate_key
from keyport.domain.principal import Principal
from keyport.domain.users import User
from keyport.services.access.authentication import (
    Authenticator,
    presented_key,
    presented_key_in,
)
from keyport.services.access.cache import Caches
from tests.support.users import a_user

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
COMPANY = str(uuid.uuid4())
OWNER = a_user(COMPANY, NOW)
KEY_ERRORS = (MissingAuthorization, InvalidApiKey, ExpiredApiKey, DeactivatedApiKey)
USER_ERRORS = (MissingActingUserHeader, InvalidActingUserHeader, UnknownActingUser)


class MemoryReader:
    """The two hot-path reads, from dicts."""

    def __init__(self) -> None:
        self.principals: dict[str, Principal] = {}
        self.users = {OWNER.id: OWNER}

    async def principal_by_digest(self, digest: str) -> Principal | None:
        return self.principals.get(digest)

    async def principals_by_digests(self, digests: Sequence[str]) -> dict[str, Principal | None]:
        return {digest: self.principals.get(digest) for digest in digests}

    async def user_by_id(self, user_id: str) -> User | None:
        return self.users.get(user_id)

    async def close(self) -> None:
        return None


def keyed(status: KeyStatus, expires_in: float = 3600) -> tuple[str, Principal]:
    key_id = uuid.uuid4()
    key = generate_key(key_id)
    return key, Principal(str(key_id), COMPANY, OWNER.id, status, NOW.timestamp() + expires_in)


READER = MemoryReader()
KEYS = [
    keyed(KeyStatus.ACTIVE),
    keyed(KeyStatus.INACTIVE),
    keyed(KeyStatus.REVOKED),
    keyed(KeyStatus.ACTIVE, expires_in=-1),
]
for key, principal in KEYS:
    READER.principals[hashlib.sha256(key.encode()).hexdigest()] = principal
AUTHENTICATOR = Authenticator(READER, Caches(ttl=60), FixedClock(NOW))
LOOP = asyncio.new_event_loop()

latin1 = st.binary(max_size=200).map(lambda raw: raw.decode("latin-1"))
base62 = st.text(alphabet=BASE62, min_size=0, max_size=60)


@st.composite
def near_keys(draw: st.DrawFn) -> str:
    """Tokens that look like keys: real ones, bent ones, and made-up ones with a good checksum."""
    real = draw(st.sampled_from([key for key, _ in KEYS]))
    choice = draw(st.integers(0, 3))
    if choice == 0:
        return real
    if choice == 1:  # one character changed
        at = draw(st.integers(0, len(real) - 1))
        return real[:at] + draw(st.characters(codec="latin-1")) + real[at + 1 :]
    body = f"{PREFIX}{draw(st.uuids())}:{draw(base62)}"
    return body + (checksum(body) if choice == 2 else draw(base62))


authorization_values = st.one_of(
    st.none(),
    latin1,
    near_keys().map(lambda token: f"Bearer {token}"),
    st.tuples(st.sampled_from(["Bearer", "bearer", "BEARER ", "Basic", ""]), latin1).map(" ".join),
)
user_header_values = st.one_of(
    st.none(),
    latin1,
    st.uuids().map(str),
    st.uuids().map(lambda u: str(u).upper()),
    st.just(OWNER.id),
    st.just(f" {OWNER.id} "),
)


@settings(max_examples=1500, deadline=None)
@given(authorization_values)
@example(None)
@example("")
@example("Bearer ")
@example("Bearer " + "\x00" * 95)
@example("Bearer " + "é" * 95)
def test_any_authorization_header_is_a_principal_or_a_documented_401(value: str | None) -> None:
    try:
        principal = LOOP.run_until_complete(AUTHENTICATOR.authenticate(value))
    except AuthenticationError as error:
        assert type(error) in KEY_ERRORS
        assert error.message in {e.message for e in KEY_ERRORS}
    else:
        assert principal.status is KeyStatus.ACTIVE and (value or "").endswith(KEYS[0][0])


@settings(max_examples=1500, deadline=None)
@given(authorization_values.filter(lambda value: value is not None))
@example("Bearer " + KEYS[0][0])
@example("bearer " + KEYS[0][0])
@example("Bearer  " + KEYS[0][0][:-1])
@example("Bearer " + "é" * 95)
def test_a_raw_authorization_value_presents_the_key_its_text_presents(value: str) -> None:
    # The express lane reads a cycling client's key from the header's bytes (web/gate/express.py).
    assert presented_key_in(value.encode("latin-1")) == presented_key(value)


@settings(max_examples=1500, deadline=None)
@given(user_header_values, st.booleans())
@example(None, True)
@example("", False)
@example("00000000-0000-0000-0000-00000000000g", True)
@example("{00000000-0000-0000-0000-0000000000}", True)
def test_any_user_header_is_a_user_or_a_documented_error(value: str | None, required: bool) -> None:
    principal = KEYS[0][1]
    try:
        user = LOOP.run_until_complete(
            AUTHENTICATOR.acting_user(principal, value, required=required)
        )
    except ActingUserError as error:
        assert type(error) in USER_ERRORS
    else:
        assert user == OWNER
