"""A Python client for Keyport's management API (docs/contract.md §10).

    from keyport.client import Keyport, KeyportError

    keyport = Keyport("https://keys.example.com", api_key)
    new = keyport.rotate_key(old_id, grace_period_seconds=3600)
    store_secret(new.key)  # shown this once

`AsyncKeyport` has the same methods, `async`. Errors raise `KeyportError` (or one of its
subclasses) with `status_code` and `message`. `verify_webhook` checks a webhook's signature.
"""

from keyport.client._async import AsyncKeyport
from keyport.client._errors import (
    AuthenticationError,
    ConflictError,
    KeyportError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ValidationError,
)
from keyport.client._models import Authorization, CreatedKey, Key, KeyPage
from keyport.client._sync import Keyport
from keyport.client._webhooks import WebhookVerificationError, verify_webhook

__all__ = [
    "AsyncKeyport",
    "AuthenticationError",
    "Authorization",
    "ConflictError",
    "CreatedKey",
    "Key",
    "KeyPage",
    "Keyport",
    "KeyportError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitedError",
    "ValidationError",
    "WebhookVerificationError",
    "verify_webhook",
]
