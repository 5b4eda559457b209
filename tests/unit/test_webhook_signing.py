"""Standard Webhooks signing: ours verifies with the `standardwebhooks` package and back."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook

from keyport.client import WebhookVerificationError, verify_webhook
from keyport.domain import webhooks


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
