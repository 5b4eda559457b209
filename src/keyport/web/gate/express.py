"""The express lane: the pipeline's second driver, for the HTTP server to call before it builds
an ASGI cycle (web/http_protocol.py).

For a GET to a fast route it asks each step of the pipeline (web/gate/pipeline.py), in order,
whether it can decide now, without I/O. When every step passes it spends what the spending
steps promised (the budget) and returns the whole answer; when a step refuses without I/O and
without effects (a duplicated header, a path not in canonical form, a blocked address, an
allowlist, a scope) it returns that refusal; when one cannot say, it returns None having
changed nothing — no token taken, nothing reported, the scope untouched — and the request goes
through the ASGI driver as it would have. Whatever it answers is reported like any other.
"""

from __future__ import annotations

import time
from typing import Any

from keyport.services.access.authentication import presented_key_in
from keyport.web import errors
from keyport.web.gate.check import HAND_ON, SPEND, Check, Passage, Refusal, Scope
from keyport.web.gate.reading import Prepared, RequestReader
from keyport.web.gate.report import Reporter
from keyport.web.gate.steps import MAX_HEADER_BYTES
from keyport.web.request_context import attach
from keyport.web.request_headers import AUTHORIZATION

Answer = tuple[int, errors.Headers, bytes]
REFUSAL_STATUS = b"x-keyport-refusal-status"
REFUSAL_BODY = b"x-keyport-refusal-body"


class ExpressLane:
    def __init__(self, checks: tuple[Check, ...], reader: RequestReader, reporter: Reporter):
        self._checks = checks
        self._reader = reader
        self._reporter = reporter

    def answer(self, scope: Scope, memo: ExpressMemo | None) -> Answer | None:
        if scope["method"] != "GET":
            return None
        started = time.perf_counter()
        prepared = memo.recall(scope) if memo is not None else None
        if prepared is None:
            if self._reader.fast_route(scope) is None:
                return None
            prepared = self._reader.read(scope, with_key=True)
            if memo is not None:
                memo.keep(scope, prepared)
        passage = prepared.passage(scope)
        spending: list[Check] | None = None
        for check in self._checks:
            verdict = check.now(passage)
            if verdict is None:
                continue
            if verdict is SPEND:
                if spending is None:
                    spending = []
                spending.append(check)
            elif verdict is HAND_ON or spending is not None:
                return None  # (a refusal after a promise to spend: the ASGI path spends first)
            else:
                return self._send(passage, prepared, started, *_refusal(verdict))  # type: ignore[arg-type]
        if spending is not None:
            for check in spending:
                if not check.spend_now(passage):
                    return None
        answer = passage.answer
        if answer is None:
            return None
        return self._send(
            passage, prepared, started, 200, [*answer.headers, *passage.added], answer.body
        )

    def _send(
        self,
        passage: Passage,
        prepared: Prepared,
        started: float,
        status: int,
        headers: errors.Headers,
        body: bytes,
    ) -> Answer:
        scope = passage.scope
        attach(scope, passage.context)
        scope["scheme"] = prepared.scheme
        if status != 200:
            headers = [*headers, *passage.added]
            if prepared.authorizing:
                headers += [(REFUSAL_STATUS, str(status).encode()), (REFUSAL_BODY, body)]
        if self._reporter.observers:
            self._reporter.report(scope, passage.context, status, time.perf_counter() - started)
        return status, headers, body


def _refusal(refusal: Refusal) -> Answer:
    status, body, headers = refusal
    return status, [*headers, (b"content-length", str(len(body)).encode())], body


class ExpressMemo:
    """One connection's last express request, so that the next one that sends the same (a
    client calling again with the same headers: nearly every request on a keep-alive
    connection) skips what the gate reads from the request alone (web/gate/reading.py): its
    headers, the client's address, its route and what admits it, and with the same key its
    digest. A request that differs only in its key (a client cycling through many keys, a
    proxy forwarding many clients' calls) keeps all of that but the key, which is read afresh.
    Every check is asked again every time.

    It holds the last request's headers, the key among them, for as long as the connection is
    open: the HTTP protocol keeps one per connection and drops it when the connection closes.
    """

    __slots__ = (
        "_client",
        "_headers",
        "_key_at",
        "_path",
        "_query",
        "_raw_path",
        "_scheme",
        "prepared",
    )

    def __init__(self) -> None:
        self._path: str | None = None
        self._headers: list[tuple[bytes, bytes]] | None = None
        self._key_at = -1  # where the kept headers hold the key (one Authorization header)
        self._query: bytes | None = None
        self._raw_path: bytes | None = None
        self._client: Any = None
        self._scheme: str | None = None
        self.prepared: Prepared | None = None

    def recall(self, scope: Scope) -> Prepared | None:
        """What was read for the last request, if this one is the same or differs from it
        only in its Authorization header's value."""
        if (
            scope["path"] != self._path
            or scope["query_string"] != self._query
            or scope.get("raw_path") != self._raw_path
            or scope.get("client") != self._client
            or scope.get("scheme") != self._scheme
        ):
            return None
        headers = scope["headers"]
        if headers == self._headers:
            return self.prepared
        return self._with_other_key(headers)

    def _with_other_key(self, headers: list[tuple[bytes, bytes]]) -> Prepared | None:
        kept, at, prepared = self._headers, self._key_at, self.prepared
        if at < 0 or kept is None or prepared is None or len(headers) != len(kept):
            return None
        presented = headers[at]
        if presented[0] != kept[at][0]:
            return None
        # Compared with the kept key put in its place (one comparison in C, no copies of the
        # lists), then put back: nothing else runs in between.
        headers[at] = kept[at]
        same_otherwise = headers == kept
        headers[at] = presented
        if not same_otherwise:
            return None
        key = presented_key_in(presented[1])
        if key is None:
            return None
        read = prepared.headers
        size = read.size - len(kept[at][1]) + len(presented[1])
        if size > MAX_HEADER_BYTES:
            return None
        # The kept headers are changed in place, not copied: the request they were read for
        # was answered and reported before this one was parsed (a request the express lane
        # handed on reads its headers afresh, in the ASGI driver).
        read.authorization = presented[1].decode("latin-1")
        read.size = size
        found = prepared._replace(key=key)
        self._headers, self.prepared = headers, found
        return found

    def keep(self, scope: Scope, prepared: Prepared) -> None:
        self._path = scope["path"]
        headers = self._headers = scope["headers"]
        self._key_at = _key_index(headers)
        self._query = scope["query_string"]
        self._raw_path = scope.get("raw_path")
        self._client = scope.get("client")
        self._scheme = scope.get("scheme")
        self.prepared = prepared


def _key_index(headers: list[tuple[bytes, bytes]]) -> int:
    """Where the Authorization header is (-1 for none)."""
    for at, (name, _) in enumerate(headers):
        if len(name) == len(AUTHORIZATION) and name.lower() == AUTHORIZATION:
            return at
    return -1
