"""Standard Webhooks signing (ours verifies with the `standardwebhooks` package and back),
the retry schedule, public addresses, and list cursors."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook

from keyport.client import WebhookVerificationError, verify_webhook
from keyport.domain import webhooks
from keyport.domain.errors import ValidationFailed
from keyport.services.keys.management_api import decode_cursor


def _signed(secret: str, stamp: int) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"type": "api_key.created", "timestamp": "x", "data": {}}).encode()
    return body, webhooks.headers(secret, webhooks.new_message_id(), stamp, body)


def test_our_signature_verifies_with_standardwebhooks_and_our_helper() -> None:
    secret = webhooks.new_secret()
    body, headers = _signed(secret, int(time.time()))
    assert Webhook(secret).verify(body, headers)["type"] == "api_key.created"
    assert verify_webhook(secret, body, headers)["type"] == "api_key.created"


def test_a_tampered_body_or_another_secret_or_an_old_timestamp_is_refused() -> None:
    secret = webhooks.new_secret()
    body, headers = _signed(secret, int(time.time()))
    with pytest.raises(WebhookVerificationError):
        verify_webhook(secret, body + b" ", headers)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(webhooks.new_secret(), body, headers)
    old_body, old_headers = _signed(secret, int(time.time()) - 301)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(secret, old_body, old_headers)


def test_retries_follow_the_schedule_then_stop() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    waits = [webhooks.next_attempt(n, now) for n in range(1, 9)]
    assert [w - now for w in waits if w] == [
        timedelta(seconds=5),
        timedelta(minutes=5),
        timedelta(minutes=30),
        timedelta(hours=2),
        timedelta(hours=5),
        timedelta(hours=10),
        timedelta(hours=10),
    ]
    assert waits[-1] is None


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("::1", False),
        ("169.254.169.254", False),
        ("::ffff:10.0.0.1", False),
        ("fd00::1", False),
        ("2606:4700::1111", True),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
    ],
)
def test_only_public_addresses_may_receive_webhooks(address: str, public: bool) -> None:
    assert webhooks.is_public_address(address) is public


@pytest.mark.parametrize(
    "cursor",
    [
        "!!",
        "bm90IGEgY3Vyc29y",  # "not a cursor"
        base64.urlsafe_b64encode(b"0001-01-01T00:00:00+01:00|x").decode(),
        base64.urlsafe_b64encode(b"2026-01-01T00:00:00+00:00|\x00").decode(),
        base64.urlsafe_b64encode(
            b"2026-01-01T00:00:00|00000000-0000-4000-8000-000000000000"
        ).decode(),
    ],
)
def test_a_cursor_the_api_did_not_hand_out_is_a_validation_error(cursor: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        decode_cursor(cursor)
    assert refused.value.errors[0].field == "cursor"
