"""Checking a Keyport webhook as the Standard Webhooks spec says (the `standardwebhooks`
package does the same): the signature over `id.timestamp.body`, and a timestamp no more
than five minutes off, so that a captured request cannot be replayed later.

This is the receiving side of the spec, written from the spec and not from the server's
signer (this package must install without the server); tests/unit/test_lifecycle_rules.py
checks that it accepts exactly what the server signs, as `standardwebhooks` does."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

TOLERANCE_SECONDS = 5 * 60
SECRET_PREFIX = "whsec_"


class WebhookVerificationError(Exception):
    pass


def verify_webhook(
    secret: str, body: bytes, headers: Mapping[str, str], *, now: float | None = None
) -> dict[str, Any]:
    """The event (`type`, `timestamp`, `data`) if the request is genuine, else an error."""
    lowered = {k.lower(): v for k, v in headers.items()}
    message_id = lowered.get("webhook-id")
    stamp = lowered.get("webhook-timestamp")
    signatures = lowered.get("webhook-signature")
    if not message_id or not stamp or not signatures:
        raise WebhookVerificationError("missing webhook headers")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise WebhookVerificationError("bad webhook-timestamp") from None
    if abs((time.time() if now is None else now) - timestamp) > TOLERANCE_SECONDS:
        raise WebhookVerificationError("webhook-timestamp too far from now")
    expected = _signature(secret, message_id, timestamp, body)
    if not any(hmac.compare_digest(expected, s) for s in signatures.split(" ")):
        raise WebhookVerificationError("no matching signature")
    event: dict[str, Any] = json.loads(body)
    return event


def _signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
