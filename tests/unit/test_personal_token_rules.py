"""The personal access token's format and the requests a token may never make."""

from __future__ import annotations

import pytest

from keyport.domain import personal_tokens as rules
from keyport.domain import token_requests
from keyport.domain.errors import ValidationFailed
from keyport.domain.keys import checksum

USER = "0b8f3c1e-2a4d-4c6b-9e8f-1a2b3c4d5e6f"


def test_a_token_is_rgo_and_32_characters_whose_last_six_are_the_key_checksum() -> None:
    token = rules.generate_token()
    assert token.startswith("rgo-") and len(token) == 36
    assert token[-6:] == checksum(token[:-6])
    assert rules.is_token(token)
    assert rules.TOKEN_PATTERN.fullmatch(token)


def test_a_mistyped_token_fails_its_checksum_before_any_lookup() -> None:
    token = rules.generate_token()
    typo = token[:10] + ("a" if token[10] != "a" else "b") + token[11:]
    assert not rules.is_token(typo)
    assert not rules.is_token(token + "x")
    assert not rules.is_token("ak_" + token[3:])


def test_the_hint_shows_the_prefix_and_four_characters() -> None:
    token = rules.generate_token()
    assert rules.hint(token) == token[:8] + "…"


def test_keys_manage_is_never_given_to_a_token() -> None:
    with pytest.raises(ValidationFailed) as refused:
        rules.validate_token_scopes(["users:read", "keys:manage"])
    assert "keys:manage" in str(refused.value)
    assert rules.validate_token_scopes(None) == ("*",)
    assert rules.validate_token_scopes([]) == ("*",)


def test_the_company_maximum_refuses_a_longer_or_endless_token() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 1, 1, tzinfo=UTC)
    policy = rules.TokenPolicy(max_days=30)
    assert rules.expiry(now, 30, policy) is not None
    for days in (31, None):
        with pytest.raises(ValidationFailed) as refused:
            rules.expiry(now, days, policy)
        assert "30 days" in str(refused.value)


@pytest.mark.parametrize(
    ("method", "path", "query", "header", "message"),
    [
        ("GET", "/v4/user/me", b"", "someone-else", token_requests.OTHER_USER),
        (
            "GET",
            "/v4/user/me",
            b"",
            "11111111-2222-4333-8444-555555555555",
            token_requests.OTHER_USER,
        ),
        ("POST", "/v4/user", b"", None, token_requests.CREATE_USERS),
        ("PATCH", f"/v4/user/{USER}", b"", None, token_requests.MANAGE_USERS),
        ("DELETE", f"/v4/user/{USER}", b"", None, token_requests.MANAGE_USERS),
        ("GET", "/v1/keys", b"", None, token_requests.MANAGE_CREDENTIALS),
        ("POST", "/v1/keys/self/rotate", b"", None, token_requests.MANAGE_CREDENTIALS),
        ("GET", "/v1/tokens", b"", None, token_requests.MANAGE_CREDENTIALS),
        ("POST", "/v1/leaks", b"", None, token_requests.MANAGE_CREDENTIALS),
        ("GET", "/v1/authorize", b"cost=2", None, token_requests.SPEND_CREDITS),
    ],
)
def test_what_a_token_may_never_ask(
    method: str, path: str, query: bytes, header: str | None, message: str
) -> None:
    refusal = token_requests.refusal(method, path, query, header, USER)
    assert refusal is not None and refusal.message == message


@pytest.mark.parametrize(
    ("method", "path", "query", "header"),
    [
        ("GET", "/v4/user/me", b"", None),
        ("GET", "/v4/user/me", b"", USER.upper()),
        ("GET", "/v4/user", b"", ""),
        ("GET", f"/v4/user/{USER}", b"", None),
        ("GET", "/v1/authorize", b"cost=0&scope=a:b", None),
        ("GET", "/v1/keysmith", b"", None),
    ],
)
def test_what_a_token_may_ask(method: str, path: str, query: bytes, header: str | None) -> None:
    assert token_requests.refusal(method, path, query, header, USER) is None
