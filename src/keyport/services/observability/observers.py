"""What watches the request path — usage recording, metrics, the request log — as one unit
that the composition root builds and a serving process starts and stops."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from keyport.services.observability.metrics import Metrics
from keyport.services.observability.request_log import RequestLog
from keyport.services.observability.request_record import RequestObserver
from keyport.services.observability.usage_flush import UsageFlusher
from keyport.services.observability.usage_recorder import UsageRecorder
from keyport.services.observability.usage_reports import UsageReports


@dataclass
class Observability:
    metrics: Metrics
    usage: UsageReports
    recorder: UsageRecorder | None  # None when KEYPORT_USAGE_RECORDING=false
    flusher: UsageFlusher | None
    request_log: RequestLog | None  # None when KEYPORT_REQUEST_LOG=false

    @property
    def observers(self) -> Sequence[RequestObserver]:
        """What the web gate reports every request to; each only counts in memory."""
        found: list[RequestObserver] = [self.metrics]
        if self.recorder is not None:
            found.append(self.recorder)
        if self.request_log is not None:
            found.append(self.request_log)
        return found

    async def start(self) -> None:
        if self.metrics.sharing is not None:
            await self.metrics.sharing.start()
        if self.flusher is not None:
            await self.flusher.start()
        if self.request_log is not None:
            await self.request_log.start()

    async def stop(self) -> None:
        """Write everything still in memory: a clean shutdown loses no usage and no log line."""
        if self.flusher is not None:
            await self.flusher.stop()
        if self.request_log is not None:
            await self.request_log.stop()
        if self.metrics.sharing is not None:
            await self.metrics.sharing.stop()
