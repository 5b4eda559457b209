"""The dashboard's one error mapping: every error under /admin becomes an HTML page.

Statuses come from `keyport.web.errors.status_of`, so a page and the API agree: 403 for a
member, 404 for an unknown or another company's key, 409 for a change the key's state does not
allow, 503 when the database is down. Not being signed in is a redirect to the sign-in page.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode

from litestar import Response
from litestar.exceptions import HTTPException
from litestar.response import Redirect
from litestar.types import ExceptionHandlersMap

from keyport.domain.errors import KeyportError
from keyport.web import errors
from keyport.web.admin.access import (
    SESSION_COOKIE,
    AnyRequest,
    Cookies,
    CsrfRefused,
    NotSignedIn,
    TwoFactorSetupRequired,
)
from keyport.web.admin.rendering import Pages

logger = logging.getLogger(__name__)

LOGIN_PATH = "/admin/login"
TWO_FACTOR_SETUP = "/admin/account?notice=two-factor-required"
CSRF_MESSAGE = (
    "This form has expired or did not come from this dashboard. "
    "Go back, reload the page and try again."
)
_TITLES = {
    400: "That did not work",
    403: "Access denied",
    404: "Not found",
    405: "Not allowed",
    409: "That change is not possible",
    410: "This link no longer works",
    503: "Temporarily unavailable",
}


def sign_in_url(request: AnyRequest, *, expired: bool) -> str:
    query: dict[str, str] = {}
    if request.method == "GET" and request.url.path != "/admin":
        query["next"] = request.url.path
    if expired:
        query["notice"] = "expired"
    return f"{LOGIN_PATH}?{urlencode(query)}" if query else LOGIN_PATH


def error_page(pages: Pages, request: AnyRequest, status: int, message: str) -> Response[str]:
    title = _TITLES.get(status, HTTPStatus(status).phrase)
    return pages.render(
        request, "error.html", status=status, status_code=status, title=title, message=message
    )


def exception_handlers(pages: Pages, cookies: Cookies) -> ExceptionHandlersMap:
    def not_signed_in(request: AnyRequest, error: NotSignedIn) -> Response[Any]:
        cleared = [cookies.clear(request, SESSION_COOKIE)] if error.had_session else None
        return Redirect(
            sign_in_url(request, expired=error.had_session), status_code=303, cookies=cleared
        )

    def two_factor_required(request: AnyRequest, _: TwoFactorSetupRequired) -> Response[Any]:
        return Redirect(TWO_FACTOR_SETUP, status_code=303)

    def csrf_refused(request: AnyRequest, _: CsrfRefused) -> Response[str]:
        return error_page(pages, request, 403, CSRF_MESSAGE)

    def domain_error(request: AnyRequest, error: KeyportError) -> Response[str]:
        status = errors.status_of(error)
        if status >= 500 and status != 503:
            logger.error("unhandled domain error", exc_info=error)
            return error_page(pages, request, 500, "Something went wrong on our side.")
        return error_page(pages, request, status, error.message)

    def http_error(request: AnyRequest, error: HTTPException) -> Response[str]:
        status = error.status_code
        if status == 404:
            return error_page(pages, request, 404, "There is no page at this address.")
        if errors.is_client_gone(error):  # never read: the client's doing, not a server error
            return error_page(pages, request, 400, HTTPStatus(400).description)
        if status >= 500:
            return unexpected(request, error)
        return error_page(pages, request, status, HTTPStatus(status).description)

    def unexpected(request: AnyRequest, error: Exception) -> Response[str]:
        if errors.is_storage_unavailable(error):
            logger.warning("storage unavailable: %s", type(error).__name__)
            response = error_page(
                pages, request, 503, "The database cannot be reached right now. Try again shortly."
            )
            response.headers["Retry-After"] = errors.RETRY_AFTER_SECONDS
            return response
        logger.error("unhandled error", exc_info=error)
        return error_page(pages, request, 500, "Something went wrong on our side.")

    return {
        NotSignedIn: not_signed_in,
        TwoFactorSetupRequired: two_factor_required,
        CsrfRefused: csrf_refused,
        KeyportError: domain_error,
        HTTPException: http_error,
        Exception: unexpected,
    }
