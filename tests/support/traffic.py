"""Clients that keep sending requests from threads and remember every answer, for the fault
and load tests: when each request started and ended, its status, body and headers."""

from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from tests.support.waiting import wait_until


@dataclass(frozen=True)
class Answer:
    label: str
    started: float  # time.monotonic()
    ended: float
    status: int  # 0: no HTTP answer at all (connection refused or reset)
    body: Any
    headers: dict[str, str]


@dataclass
class Traffic:
    """Each stream sends `GET path` with `headers` to `port` in a loop, `pause` apart."""

    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def stream(
        self,
        label: str,
        port: int,
        path: str,
        headers: dict[str, str] | None = None,
        *,
        pause: float = 0.02,
    ) -> None:
        thread = threading.Thread(
            target=self._run, args=(label, port, path, headers or {}, pause), daemon=True
        )
        self._threads.append(thread)
        thread.start()

    def _run(self, label: str, port: int, path: str, headers: dict[str, str], pause: float) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
        next_at = time.monotonic()
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                connection.request("GET", path, headers=headers)
                response = connection.getresponse()
                raw = response.read()
                headers_seen = {k.lower(): v for k, v in response.getheaders()}
                answer = Answer(
                    label, started, time.monotonic(), response.status, _decoded(raw), headers_seen
                )
            except (OSError, http.client.HTTPException):
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
                answer = Answer(label, started, time.monotonic(), 0, None, {})
            self.answers.append(answer)
            next_at = max(next_at + pause, started)  # a slow answer does not cause a burst
            time.sleep(max(0.0, next_at - time.monotonic()))
        connection.close()

    def stop(self) -> list[Answer]:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)
        return list(self.answers)

    def of(self, label: str) -> list[Answer]:
        return [a for a in list(self.answers) if a.label == label]

    def wait_for_answers(
        self,
        labels: list[str],
        *,
        started_after: float = 0.0,
        status: int | None = None,
        count: int = 1,
        timeout: float = 30.0,
    ) -> None:
        """Until every stream in `labels` has `count` answers (of `status`, if given) to
        requests started after `started_after` (time.monotonic())."""

        def enough(label: str) -> bool:
            found = [
                a
                for a in self.of(label)
                if a.started > started_after and (status is None or a.status == status)
            ]
            return len(found) >= count

        wait_until(
            lambda: all(enough(label) for label in labels),
            f"{count} answers ({status or 'any status'}) for {labels} after {started_after}",
            timeout=timeout,
        )


def _decoded(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")
