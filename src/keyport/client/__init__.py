"""`keyport.client` is the distribution `keyport-client` (clients/python/), under the name it
had when it lived inside the server: one source, installed into the server's environment by
scripts/setup. New code imports `keyport_client`."""

from keyport_client import (
    AsyncKeyport,
    AuthenticationError,
    Authorization,
    ConflictError,
    CreatedKey,
    Identity,
    Key,
    KeyPage,
    Keyport,
    KeyportError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    Refusal,
    ValidationError,
    WebhookVerificationError,
    verify_webhook,
)

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
