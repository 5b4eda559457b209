"""The one place that turns errors into HTTP answers, in the NestJS shape of the v4 API:
`{"statusCode": 401, "message": "...", "error": "Unauthorized"}` plus `errors` for validation.
"""

from __future__ import annotations

import functools
import logging
import time
from http import HTTPStatus
from typing import Any

import msgspec
from litestar.exceptions import HTTPException

from keyport.db import integrity, outages
from keyport.domain import errors as domain

logger = logging.getLogger(__name__)


class FieldErrorOut(msgspec.Struct):
    field: str
    message: str


class ErrorOut(msgspec.Struct, rename="camel"):
    """Every error answer (web/errors.py): the NestJS shape of the v4 API."""

    status_code: int
    message: str
    error: str
    errors: list[FieldErrorOut] | msgspec.UnsetType = msgspec.UNSET  # validation only


_STATUS_BY_ERROR: list[tuple[type[domain.KeyportError], int]] = [
    (domain.MalformedRequest, 400),
    (domain.AuthenticationError, 401),
    (domain.UnknownActingUser, 403),
    (domain.ActingUserError, 400),
    (domain.ValidationFailed, 400),
    (domain.PermissionDenied, 403),
    (domain.NotFound, 404),
    (domain.Conflict, 409),
    (domain.Gone, 410),
    (domain.PayloadTooLarge, 413),
    (domain.RateLimited, 429),
    (domain.HeadersTooLarge, 431),
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


def error_headers(status: int, *, retry_after: int | None = None) -> Headers:
    headers = [_JSON]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    elif status == 503:
        headers.append((b"retry-after", RETRY_AFTER_SECONDS.encode()))
    elif retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    return headers


def render_domain_error(error: domain.KeyportError) -> tuple[int, bytes, Headers]:
    status = status_of(error)
    details = None
    if isinstance(error, domain.ValidationFailed):
        details = [{"field": e.field, "message": e.message} for e in error.errors]
    elif isinstance(error, domain.InsufficientScope) and error.hint is not None:
        details = [{"field": error.hint.field, "message": error.hint.message}]
    retry_after = error.retry_after if isinstance(error, domain.RateLimited) else None
    body = error_body(status, error.message, details)
    return status, body, error_headers(status, retry_after=retry_after)


def is_storage_unavailable(error: BaseException) -> bool:
    """Errors that mean 'the database or Redis cannot answer now': 503, never 500."""
    return outages.is_storage_unavailable(error)


# Litestar's words when a request's body never came: the client (or a proxy that gave up on a
# slow answer) closed the connection. Nobody is left to answer and nothing is broken.
CLIENT_GONE = "client disconnected prematurely"


def is_client_gone(error: BaseException) -> bool:
    return isinstance(error, HTTPException) and error.detail == CLIENT_GONE


_OUTAGE_LOG_EVERY = 10.0  # seconds: an outage under load must not flood the log
_last_outage_log = [float("-inf")]


def render_unexpected(error: BaseException) -> tuple[int, bytes, Headers]:
    refused = integrity.as_domain_error(error)  # a write outside a unit of work
    if refused is not None:
        return render_domain_error(refused)
    if is_storage_unavailable(error):
        if time.monotonic() - _last_outage_log[0] >= _OUTAGE_LOG_EVERY:
            _last_outage_log[0] = time.monotonic()
            logger.warning("storage unavailable, answering 503: %s", type(error).__name__)
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


@functools.lru_cache(maxsize=256)
def _rate_limited(retry_after: int) -> tuple[int, bytes, Headers]:
    return render_domain_error(domain.RateLimited(retry_after))


def render(error: domain.KeyportError) -> tuple[int, bytes, Headers]:
    if type(error) is domain.RateLimited:  # a flood is answered with these: encode each once
        return _rate_limited(error.retry_after)
    return PRERENDERED.get(type(error)) or render_domain_error(error)
