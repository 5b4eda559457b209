"""TOTP codes, recovery codes and the team rules, without a database."""

from __future__ import annotations

from datetime import UTC, datetime

import pyotp
import pytest

from keyport.domain.errors import Conflict, PermissionDenied, ValidationFailed
from keyport.domain.team import check_removal, check_role_change, parse_assignable_role
from keyport.domain.users import Role, User, UserType
from keyport.services.accounts import totp
from keyport.services.accounts.secret_box import SecretBox, SecretUnreadable

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
NOW = 1_800_000_015.0  # 15 s into a 30 s step


def person(role: Role, user_id: str = "u") -> User:
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    return User(
        user_id, "c", f"{user_id}@x.test", "A", "B", None, "UTC", "en", role,
        UserType.STANDARD, moment, moment,
    )  # fmt: skip


@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_a_code_matches_its_step_within_one_step_of_drift(offset: int) -> None:
    code = pyotp.TOTP(SECRET).at(NOW + 30 * offset)
    assert totp.matching_step(SECRET, code, NOW) == int(NOW // 30) + offset


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", "12 34 56x"])
def test_malformed_or_distant_codes_match_nothing(code: str) -> None:
    assert totp.matching_step(SECRET, code, NOW) is None
    assert totp.matching_step(SECRET, pyotp.TOTP(SECRET).at(NOW + 60), NOW) is None


def test_recovery_codes_are_ten_distinct_and_digested_loosely() -> None:
    codes = totp.new_recovery_codes()
    assert len(set(codes)) == 10
    assert all(totp.is_recovery_code(totp.clean_code(code)) for code in codes)
    assert totp.recovery_digest(codes[0]) == totp.recovery_digest(
        codes[0].upper().replace("-", " ")
    )


def test_sealed_secrets_open_only_with_the_same_server_secret() -> None:
    box = SecretBox("a" * 32)
    sealed = box.seal(SECRET)
    assert SECRET not in sealed and box.open(sealed) == SECRET
    with pytest.raises(SecretUnreadable):
        SecretBox("b" * 32).open(sealed)


def test_role_rules() -> None:
    owner, admin, member = (
        person(Role.OWNER, "o"),
        person(Role.ADMIN, "a"),
        person(Role.MEMBER, "m"),
    )
    check_role_change(owner, member, Role.ADMIN)
    check_role_change(None, admin, Role.MEMBER)  # the operator
    with pytest.raises(PermissionDenied):
        check_role_change(admin, owner, Role.MEMBER)
    with pytest.raises(PermissionDenied):
        check_role_change(admin, member, Role.ADMIN)
    with pytest.raises(Conflict):
        check_role_change(owner, member, Role.MEMBER)
    with pytest.raises(ValidationFailed):
        parse_assignable_role("owner")
    with pytest.raises(PermissionDenied):
        check_removal(admin, owner)
    with pytest.raises(PermissionDenied):
        check_removal(member, person(Role.MEMBER, "m2"))
    check_removal(admin, member)
