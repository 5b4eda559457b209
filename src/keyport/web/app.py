"""Assembling the ASGI application from a container."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import partial
from http import HTTPStatus

from litestar import Litestar, Request, Response
from litestar.exceptions import HTTPException, ValidationException

from keyport.bootstrap import Container
from keyport.db.engine import ping
from keyport.domain.auth_outcomes import failure_of
from keyport.domain.errors import KeyportError, PayloadTooLarge
from keyport.services.access.lookup_limits import LookupLimiter
from keyport.services.observability.request_record import RequestObserver
from keyport.web import errors
from keyport.web.admin.router import admin_router
from keyport.web.api.authorize_endpoint import AuthorizeEndpoint, authorize_route
from keyport.web.api.context import require_principal
from keyport.web.api.keys import key_router
from keyport.web.api.me_endpoint import MeEndpoint
from keyport.web.api.tokens import token_router
from keyport.web.api.users import user_router
from keyport.web.docs_ui import SwaggerDocs, docs_router
from keyport.web.gate import ApiGate
from keyport.web.openapi import openapi_config, openapi_route
from keyport.web.ops import ops_router
from keyport.web.request_context import find_context
from keyport.web.route_admissions import route_admissions
from keyport.web.route_labels import route_labels
from keyport.web.throttling import Throttle

logger = logging.getLogger(__name__)
MAX_BODY_BYTES = 64 * 1024


def _respond(status: int, body: bytes, headers: errors.Headers) -> Response[bytes]:
    return Response(
        body,
        status_code=status,
        media_type="application/json",
        headers={k.decode(): v.decode() for k, v in headers if k != b"content-type"},
    )


def _on_domain_error(request: Request, error: KeyportError) -> Response[bytes]:  # type: ignore[type-arg]
    context = find_context(request.scope)
    if context is not None and (reason := failure_of(error)) is not None:
        context.auth_failure = reason
    return _respond(*errors.render(error))


def _camel(name: str) -> str:
    """Python parameter names back to the wire's camelCase (`user_type` → `userType`)."""
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _on_validation_error(_: Request, error: ValidationException) -> Response[bytes]:  # type: ignore[type-arg]
    details = []
    for item in error.extra if isinstance(error.extra, list) else []:
        field = item.get("key") or "request" if isinstance(item, dict) else "request"
        message = item.get("message", "is invalid") if isinstance(item, dict) else str(item)
        details.append({"field": _camel(str(field)), "message": str(message)})
    return _respond(
        400, errors.error_body(400, "Validation failed", details), errors.error_headers(400)
    )


def _on_http_error(request: Request, error: HTTPException) -> Response[bytes]:  # type: ignore[type-arg]
    status = error.status_code
    if status == 413:
        return _respond(*errors.render(PayloadTooLarge()))
    if errors.is_client_gone(error):
        status = 400  # never read: recorded as the client's doing, not a server error
    if status == 404:
        message = f"Cannot {request.method} {request.url.path}"
    elif status < 500:
        message = error.detail or HTTPStatus(status).phrase
    else:
        message = HTTPStatus(status).phrase
    return _respond(status, errors.error_body(status, message), errors.error_headers(status))


def _on_unexpected(_: Request, error: Exception) -> Response[bytes]:  # type: ignore[type-arg]
    return _respond(*errors.render_unexpected(error))


def create_app(
    container: Container,
    *,
    run_background: bool = True,
    observers: Sequence[RequestObserver] | None = None,
) -> ApiGate:
    """The application; every request is reported to `observers` (default: the container's
    usage, metrics and request log)."""

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        if run_background:
            await container.start_background()
        try:
            yield
        finally:
            await container.close()

    framework = Litestar(
        route_handlers=[
            user_router(
                container.authenticator,
                container.users,
                LookupLimiter(container.buckets, container.settings.user_write_limit),
            ),
            key_router(container.authenticator, container.keys, container.clock),
            token_router(container.authenticator, container.tokens, container.clock),
            authorize_route(container.authenticator),
            ops_router(
                database=partial(ping, container.engine),
                redis=container.redis.ping if container.redis is not None else None,
                scrape_metrics=container.observability.metrics.scrape,
            ),
            openapi_route(),
            admin_router(
                secure_cookies=container.settings.secure_cookies,
                sessions=container.sessions,
                sign_in=container.sign_in,
                key_management=container.key_management,
                audit_log=container.audit_log,
                team=container.team,
                invitations=container.invitations,
                account=container.account,
                two_factor=container.two_factor,
                webhooks=container.webhooks,
                tokens=container.tokens,
                clock=container.clock,
                default_rate_limit=container.settings.rate_limit,
            ),
        ],
        exception_handlers={
            KeyportError: _on_domain_error,
            ValidationException: _on_validation_error,
            HTTPException: _on_http_error,
            Exception: _on_unexpected,
        },
        openapi_config=openapi_config(SwaggerDocs(), docs_router()),
        lifespan=[lifespan],
        request_max_body_size=MAX_BODY_BYTES,
        guards=[require_principal],  # behind the gate's authentication, in case of a hole
        debug=False,
        logging_config=None,
    )
    return ApiGate(
        framework,
        container.authenticator,
        container.observability.observers if observers is None else observers,
        clock=container.clock,
        throttle=Throttle(container.key_limits, container.failed_auth),
        trusted_proxies=container.settings.trusted_proxies,
        fast_routes=[
            MeEndpoint(),
            AuthorizeEndpoint(),
        ],
        admission_of=route_admissions(framework),  # refuses to start if a route declares none
        route_of=route_labels(framework),
        express_lane_failed=container.observability.metrics.express_lane_failed,
    )
