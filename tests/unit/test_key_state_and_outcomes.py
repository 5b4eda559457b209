"""The one home of two rules: a key's effective state, and authentication outcomes."""

from __future__ import annotations

import pytest

from keyport.domain import errors
from keyport.domain.auth_outcomes import (
    AUTH_FAILURES,
    KEY_STATE_REFUSALS,
    AuthOutcome,
    failure_of,
)
from keyport.domain.keys import KeyState, KeyStatus, effective_state


@pytest.mark.parametrize(
    ("status", "expired", "state"),
    [
        (KeyStatus.ACTIVE, False, KeyState.ACTIVE),
        (KeyStatus.INACTIVE, False, KeyState.DEACTIVATED),
        (KeyStatus.ACTIVE, True, KeyState.EXPIRED),
        (KeyStatus.INACTIVE, True, KeyState.EXPIRED),  # expired beats deactivated
        (KeyStatus.REVOKED, True, KeyState.REVOKED),  # revoked beats expired
        (KeyStatus.REVOKED, False, KeyState.REVOKED),
    ],
)
def test_revoked_beats_expired_beats_deactivated(
    status: KeyStatus, expired: bool, state: KeyState
) -> None:
    assert effective_state(status, expired) is state


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (errors.MissingAuthorization(), "missing"),
        (errors.InvalidApiKey(), "invalid"),
        (errors.ExpiredApiKey(), "expired"),
        (errors.DeactivatedApiKey(), "deactivated"),
        (errors.MissingActingUserHeader(), "missing_user_header"),
        (errors.InvalidActingUserHeader(), "invalid_user_header"),
        (errors.UnknownActingUser(), "invalid_user"),
        (errors.IpNotAllowed(), "ip_not_allowed"),
        (errors.InsufficientScope("a:b"), "insufficient_scope"),
    ],
)
def test_each_authentication_error_has_its_reason_string(
    error: errors.KeyportError, outcome: str
) -> None:
    assert failure_of(error) == outcome


def test_errors_that_are_not_authentication_refusals_have_no_outcome() -> None:
    assert failure_of(errors.NotFound()) is None
    assert failure_of(errors.RateLimited()) is None  # the gate names the key's 429 itself


def test_the_reason_strings_stored_and_counted_are_unchanged() -> None:
    assert [str(outcome) for outcome in AUTH_FAILURES] == [
        "missing",
        "invalid",
        "expired",
        "deactivated",
        "disabled",
        "missing_user_header",
        "invalid_user_header",
        "invalid_user",
        "rate_limited",
        "ip_not_allowed",
        "insufficient_scope",
        "token_refused",
    ]
    success: str = AuthOutcome.SUCCESS  # a str: equal to the plain string
    assert success == "success"
    assert "expired" in KEY_STATE_REFUSALS  # plain strings read back from the database match
    assert "invalid" not in KEY_STATE_REFUSALS
