"""The client's errors, one per documented answer:

KeyportError                 any refusal; status_code, message, errors
├── ValidationError          400, errors names the fields
├── AuthenticationError      401 (missing, invalid, expired, deactivated key)
├── PermissionDeniedError    403 (scope, role, IP allowlist)
├── NotFoundError            404
├── ConflictError            409 (a state change that changes nothing, rotating a dead key)
└── RateLimitedError         429, retry_after in seconds
"""

from __future__ import annotations

import contextlib
from typing import Any


class KeyportError(Exception):
    def __init__(
        self, status_code: int, message: str, errors: list[dict[str, str]] | None = None
    ) -> None:
        super().__init__(f"{status_code}: {message}")
        self.status_code = status_code
        self.message = message
        self.errors = errors or []


class ValidationError(KeyportError):
    pass


class AuthenticationError(KeyportError):
    pass


class PermissionDeniedError(KeyportError):
    pass


class NotFoundError(KeyportError):
    pass


class ConflictError(KeyportError):
    pass


class RateLimitedError(KeyportError):
    retry_after: float | None = None


_BY_STATUS: dict[int, type[KeyportError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    429: RateLimitedError,
}


def error_for(status_code: int, body: Any, retry_after: str | None) -> KeyportError:
    message = body.get("message") if isinstance(body, dict) else None
    errors = body.get("errors") if isinstance(body, dict) else None
    error = _BY_STATUS.get(status_code, KeyportError)(
        status_code,
        str(message or f"HTTP {status_code}"),
        errors if isinstance(errors, list) else None,
    )
    if isinstance(error, RateLimitedError) and retry_after:
        with contextlib.suppress(ValueError):
            error.retry_after = float(retry_after)
    return error
