"""The one place that turns errors into HTTP answers, in the NestJS shape of the v4 API:
`{"statusCode": 401, "message": "...", "error": "Unauthorized"}` plus `errors` for validation.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import msgspec
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from keyport.domain import errors as domain

logger = logging.getLogger(__name__)

_STATUS_BY_ERROR: list[tuple[type[domain.KeyportError], int]] = [
    (domain.AuthenticationError, 401),
    (domain.UnknownActingUser, 403),
    (domain.ActingUserError, 400),
    (domain.ValidationFailed, 400),
    (domain.PermissionDenied, 403),
    (domain.NotFound, 404),
    (domain.Conflict, 409),
    (domain.ServiceUnavailable, 503),
]

RETRY_AFTER_SECONDS = "5"
Headers = list[tuple[bytes, bytes]]
_JSON = (b"content-type", b"application/json")


def status_of(error: domain.KeyportError) -> int:
    for error_type, status in _STATUS_BY_ERROR:
        if isinstance(error, error_type):
            return status
    return 500


def error_body(status: int, message: str, errors: list[dict[str, str]] | None = None) -> bytes:
    body: dict[str, Any] = {
        "statusCode": status,
        "message": message,
        "error": HTTPStatus(status).phrase,
    }
    if errors is not None:
        body["errors"] = errors
    return msgspec.json.encode(body)


def error_headers(status: int) -> Headers:
    headers = [_JSON]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    elif status == 503:
        headers.append((b"retry-after", RETRY_AFTER_SECONDS.encode()))
    return headers


def render_domain_error(error: domain.KeyportError) -> tuple[int, bytes, Headers]:
    status = status_of(error)
    details = None
    if isinstance(error, domain.ValidationFailed):
        details = [{"field": e.field, "message": e.message} for e in error.errors]
    return status, error_body(status, error.message, details), error_headers(status)


def is_storage_unavailable(error: BaseException) -> bool:
    """Errors that mean 'the database cannot answer now', which become 503, never 500."""
    if isinstance(error, OperationalError | PoolTimeout | ConnectionError | TimeoutError):
        return True
    return isinstance(error, DBAPIError) and error.connection_invalidated


def render_unexpected(error: BaseException) -> tuple[int, bytes, Headers]:
    if is_storage_unavailable(error):
        logger.warning("storage unavailable: %s", type(error).__name__)
        status = 503
    else:
        logger.error("unhandled error", exc_info=error)
        status = 500
    return status, error_body(status, HTTPStatus(status).phrase), error_headers(status)


# Authentication failures answer on every bad request: encode them once.
PRERENDERED: dict[type[domain.KeyportError], tuple[int, bytes, Headers]] = {
    error_type: render_domain_error(error_type())
    for error_type in (
        domain.MissingAuthorization,
        domain.InvalidApiKey,
        domain.ExpiredApiKey,
        domain.DeactivatedApiKey,
    )
}


def render(error: domain.KeyportError) -> tuple[int, bytes, Headers]:
    return PRERENDERED.get(type(error)) or render_domain_error(error)
