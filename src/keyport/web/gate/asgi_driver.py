"""The gate: plain ASGI middleware in front of the framework, and the pipeline's first driver.

It runs before routing, so every API request (`web.paths.GUARDED_PREFIXES`), even to an
unknown path, passes the checks of web/gate/pipeline.py first, and a refused request costs no
framework work at all. Each request gets a request id (in `x-request-id`, on every answer),
HSTS over https, and one RequestRecord for the observers (usage, metrics, logs) once answered.
`/v1/authorize` refusals also carry their status and body in headers of their own
(REFUSAL_STATUS, REFUSAL_BODY) for proxies that keep only the status (nginx `auth_request`).

`answer_now` is the entry of the second driver, the express lane (web/gate/express.py); an
exception there is a bug of ours, never the client's: it is logged with its traceback,
counted, and the request goes this usual way instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from keyport.config import Network
from keyport.domain.clock import Clock
from keyport.services.access.authentication import Authenticator
from keyport.services.observability.request_record import RequestObserver
from keyport.web import errors
from keyport.web.gate.check import ASGIApp, FastRoute, Message, Receive, Scope, Send
from keyport.web.gate.express import REFUSAL_BODY, REFUSAL_STATUS, Answer, ExpressLane, ExpressMemo
from keyport.web.gate.pipeline import request_pipeline
from keyport.web.gate.reading import AdmissionOf, RequestReader
from keyport.web.gate.report import Reporter, RouteOf
from keyport.web.request_context import attach
from keyport.web.throttling import Throttle

logger = logging.getLogger(__name__)


def with_refusal_headers(start: Message, body: bytes) -> Message:
    """A refusal's start message, also naming its status and body in headers of their own."""
    headers = [*start.get("headers", ())]
    headers.append((REFUSAL_STATUS, str(start["status"]).encode()))
    headers.append((REFUSAL_BODY, body))
    return {**start, "headers": headers}


class ApiGate:
    def __init__(
        self,
        app: ASGIApp,
        authenticator: Authenticator,
        observers: Sequence[RequestObserver] = (),
        *,
        admission_of: AdmissionOf,
        clock: Clock | None = None,
        throttle: Throttle | None = None,
        trusted_proxies: tuple[Network, ...] = (),
        fast_routes: Sequence[FastRoute] = (),
        route_of: RouteOf = lambda scope: None,
        express_lane_failed: Callable[[], None] = lambda: None,
    ) -> None:
        self.app = app
        self._checks = request_pipeline(app, authenticator, throttle or Throttle(None, None))
        self._reader = RequestReader(
            admission_of, trusted_proxies=trusted_proxies, fast_routes=fast_routes
        )
        self._reporter = Reporter(observers, clock=clock, route_of=route_of)
        self._express = ExpressLane(self._checks, self._reader, self._reporter)
        self._express_lane_failed = express_lane_failed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        prepared = self._reader.read(scope)
        passage = prepared.passage(scope)
        context = attach(scope, passage.context)
        scope["scheme"] = prepared.scheme
        added = passage.added
        status = 0  # none sent yet
        held_start: Message | None = None
        authorizing = prepared.authorizing

        async def send_with_headers(message: Message) -> None:
            nonlocal status, held_start
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), *added]
                if authorizing and status >= 400:
                    held_start = message  # sent with the body, which it must name
                    return
            elif held_start is not None:
                start, held_start = held_start, None
                if not message.get("more_body", False):
                    start = with_refusal_headers(start, message.get("body", b""))
                await send(start)
            await send(message)

        passage.receive, passage.send = receive, send_with_headers
        try:
            for check in self._checks:
                try:
                    refusal = await check.run(passage)
                except Exception as error:
                    if status:
                        raise  # the answer has begun: the server ends the connection
                    refusal = errors.render_unexpected(error)
                if refusal is not None:
                    await _refuse(send_with_headers, *refusal)
                    break
        finally:
            if self._reporter.observers:
                self._reporter.report(scope, context, status or 500, time.perf_counter() - started)

    def answer_now(self, scope: Scope, memo: ExpressMemo | None = None) -> Answer | None:
        """The whole answer (status, headers, body) to a GET that the express lane can give
        without I/O, reported to the observers like any other; None (the scope untouched,
        nothing spent or reported) when only this gate's ASGI path can answer it. The HTTP
        server calls this before it builds an ASGI cycle for the request, with its
        connection's `memo`."""
        try:
            return self._express.answer(scope, memo)
        except Exception:
            logger.exception("express lane failed: the request goes the usual way")
            self._express_lane_failed()
            return None


async def _refuse(send: Send, status: int, body: bytes, headers: errors.Headers) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
