"""Keyport for Python: the management API's client, and middleware that guards an app.

    from keyport_client import Keyport, KeyportError

    keyport = Keyport("https://keys.example.com", api_key)
    new = keyport.rotate_key(old_id, grace_period_seconds=3600)
    store_secret(new.key)  # shown this once

`AsyncKeyport` has the same methods, `async`. Errors raise `KeyportError` (or one of its
subclasses) with `status_code` and `message`. `verify_webhook` checks a webhook's signature.

Guarding an app: `keyport_client.asgi.KeyportMiddleware` (Starlette, FastAPI, Litestar, any
ASGI app; per-route needs in `keyport_client.fastapi`), `keyport_client.django.KeyportMiddleware`
and `keyport_client.flask.Keyport`. Each hands the app an `Identity`, or the client a `Refusal`.
"""

from keyport_client._async import AsyncKeyport
from keyport_client._decision import Refusal
from keyport_client._errors import (
    AuthenticationError,
    ConflictError,
    KeyportError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ValidationError,
)
from keyport_client._models import Authorization, CreatedKey, Identity, Key, KeyPage
from keyport_client._sync import Keyport
from keyport_client._webhooks import WebhookVerificationError, verify_webhook

__all__ = [
    "AsyncKeyport",
    "AuthenticationError",
    "Authorization",
    "ConflictError",
    "CreatedKey",
    "Identity",
    "Key",
    "KeyPage",
    "Keyport",
    "KeyportError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitedError",
    "Refusal",
    "ValidationError",
    "WebhookVerificationError",
    "verify_webhook",
]
