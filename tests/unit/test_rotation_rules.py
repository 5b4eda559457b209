"""Issue 30, item 2: how long a key renewing itself may ask to live, and that a key with a
successor cannot rotate again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from keyport.domain import rotation
from keyport.domain.errors import InvalidKeyTransition, ValidationFailed
from keyport.domain.keys import ApiKey, KeyStatus

NOW = datetime(2026, 12, 8, 12, 0, tzinfo=UTC)


def a_key(lifetime: timedelta, *, rotated_to: str | None = None) -> ApiKey:
    return ApiKey(
        id="k",
        company_id="c",
        name=None,
        hint="h",
        status=KeyStatus.ACTIVE,
        expires_at=NOW + lifetime,
        created_at=NOW,
        created_by=None,
        last_used_at=None,
        last_used_ip=None,
        rotated_to=rotated_to,
    )


@pytest.mark.parametrize(
    ("lifetime", "most"),
    [
        (timedelta(days=7), 7),
        (timedelta(days=1.6), 2),  # rounded as the default lifetime is
        (timedelta(days=1.4), 1),
        (timedelta(hours=2), 1),  # never below a day
        (timedelta(days=90), 90),
    ],
)
def test_a_key_renews_itself_for_at_most_its_own_whole_days(lifetime: timedelta, most: int) -> None:
    key = a_key(lifetime)
    assert rotation.default_days(key) == most
    rotation.check_own_lifetime(key, most)
    rotation.check_own_lifetime(key, None)  # the default is its own lifetime
    with pytest.raises(ValidationFailed) as refused:
        rotation.check_own_lifetime(key, most + 1)
    assert refused.value.errors[0].field == "expiresInDays"


def test_a_key_with_a_successor_is_not_rotatable() -> None:
    rotation.check_rotatable(a_key(timedelta(days=1)), NOW)
    with pytest.raises(InvalidKeyTransition, match=r"^API key has already been rotated$"):
        rotation.check_rotatable(a_key(timedelta(days=1), rotated_to="n"), NOW)
