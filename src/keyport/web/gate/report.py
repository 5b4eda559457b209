"""One RequestRecord per answered request, handed to the observers (usage, metrics, logs)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from keyport.domain.clock import Clock, SystemClock
from keyport.services.observability.request_record import RequestObserver, RequestRecord
from keyport.web.gate.check import Scope
from keyport.web.paths import is_authorize
from keyport.web.request_context import RequestContext

logger = logging.getLogger(__name__)
RouteOf = Callable[[Scope], str | None]


class Reporter:
    def __init__(
        self,
        observers: Sequence[RequestObserver],
        *,
        clock: Clock | None = None,
        route_of: RouteOf = lambda scope: None,
    ) -> None:
        self.observers = tuple(observers)
        self._time = (clock or SystemClock()).time
        self._route_of = route_of  # the route template the framework chose, for the record

    def report(self, scope: Scope, context: RequestContext, status: int, latency: float) -> None:
        method, path = _requested(scope, context)
        # Positional: a NamedTuple built from keywords costs a third more, on every request.
        record = RequestRecord(
            context.request_id,
            method,
            path,
            context.route or self._route_of(scope),
            status,
            latency,
            context.client_ip,
            context.headers.user_agent,
            context.key_id,
            context.acting_user_id,
            context.auth_failure,
            self._time() - latency,
            context.verification_seconds,
        )
        for observer in self.observers:
            try:
                observer.observe(record)
            except Exception:  # one broken observer must not silence the others
                logger.exception("request observer failed")


def _requested(scope: Scope, context: RequestContext) -> tuple[str, str]:
    """Method and path for the log: for `/v1/authorize` asked by a trusted proxy, those of
    the original request it names (without the query, which may hold credentials)."""
    method: str = scope["method"]
    path: str = scope["path"]
    if not context.via_trusted_proxy or not is_authorize(path):
        return method, path
    headers = context.headers
    original_uri = headers.forwarded_uri or headers.original_uri
    if original_uri:
        path = original_uri.split("?", 1)[0]
    return (headers.forwarded_method or method)[:16], path
