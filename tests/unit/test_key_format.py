"""The key wire format: ak_live:<key-id>:<random><checksum>."""

from __future__ import annotations

import re
import uuid

import pytest

from keyport.domain import keys
from keyport.domain.errors import InvalidKeyTransition, ValidationFailed
from keyport.domain.keys import KeyStatus


def test_generated_key_has_the_documented_shape() -> None:
    key_id = uuid.uuid4()
    key = keys.generate_key(key_id)
    prefix, found_id, secret = key.split(":")
    assert prefix == "ak_live"
    assert found_id == str(key_id)
    assert re.fullmatch(r"[0-9A-Za-z]{50}", secret)
    assert keys.parse_key_id(key) == str(key_id)


def test_checksum_is_the_crc32_of_everything_before_it() -> None:
    key = keys.generate_key(uuid.uuid4())
    body, check = key[:-6], key[-6:]
    assert keys.checksum(body) == check


def test_a_changed_character_fails_the_checksum() -> None:
    key = keys.generate_key(uuid.uuid4())
    position = len(key) - 10
    replacement = "A" if key[position] != "A" else "B"
    tampered = key[:position] + replacement + key[position + 1 :]
    assert keys.parse_key_id(tampered) is None


@pytest.mark.parametrize(
    "token",
    [
        "",
        "ak_live:",
        # Fixed ids: every pytest-xdist worker must collect the same parameters.
        "ak_test:" + "4b0d8a59-3f0e-4c1e-9a57-0f6a2d1c7e93" + ":" + "a" * 50,
        "ak_live:" + "4b0d8a59-3f0e-4c1e-9a57-0f6a2d1c7e93".upper() + ":" + "a" * 50,
        "ak_live:not-a-uuid-at-all-not-a-uuid-at-all12:" + "a" * 50,
    ],
)
def test_malformed_tokens_have_no_key_id(token: str) -> None:
    assert keys.parse_key_id(token) is None


def test_non_base62_secret_is_refused_even_with_a_matching_checksum() -> None:
    body = f"ak_live:{uuid.uuid4()}:" + "-" * 44
    assert keys.parse_key_id(body + keys.checksum(body)) is None


def test_two_keys_never_repeat_their_secret() -> None:
    key_id = uuid.uuid4()
    assert keys.generate_key(key_id) != keys.generate_key(key_id)


def test_digest_is_sha256_hex_of_the_whole_key() -> None:
    import hashlib

    key = keys.generate_key(uuid.uuid4())
    assert keys.digest(key) == hashlib.sha256(key.encode()).hexdigest()


def test_hint_shows_the_key_id_and_four_secret_characters() -> None:
    key = keys.generate_key(uuid.uuid4())
    assert keys.hint(key) == key[:49] + "…"


@pytest.mark.parametrize("days", [1, 30, 90, "7"])
def test_expiry_accepts_whole_days_from_1_to_90(days: object) -> None:
    assert keys.validate_expiry_days(days) == int(str(days))


@pytest.mark.parametrize("days", [0, 91, -1, 1.5, "abc", None, True, "", 10**20])
def test_expiry_refuses_anything_else(days: object) -> None:
    with pytest.raises(ValidationFailed) as raised:
        keys.validate_expiry_days(days)
    assert raised.value.errors[0].field == "expiresInDays"


def test_key_names_are_trimmed_and_limited() -> None:
    assert keys.validate_key_name("  Production  ") == "Production"
    assert keys.validate_key_name("   ") is None
    assert keys.validate_key_name("x" * 100) == "x" * 100
    with pytest.raises(ValidationFailed):
        keys.validate_key_name("x" * 101)
    with pytest.raises(ValidationFailed):
        keys.validate_key_name("bad\x00name")


def test_revoked_is_final() -> None:
    for target in KeyStatus:
        with pytest.raises(InvalidKeyTransition):
            keys.check_transition(KeyStatus.REVOKED, target)


def test_active_and_inactive_move_between_each_other_and_to_revoked() -> None:
    keys.check_transition(KeyStatus.ACTIVE, KeyStatus.INACTIVE)
    keys.check_transition(KeyStatus.INACTIVE, KeyStatus.ACTIVE)
    keys.check_transition(KeyStatus.ACTIVE, KeyStatus.REVOKED)
    keys.check_transition(KeyStatus.INACTIVE, KeyStatus.REVOKED)
    with pytest.raises(InvalidKeyTransition, match="already active"):
        keys.check_transition(KeyStatus.ACTIVE, KeyStatus.ACTIVE)
