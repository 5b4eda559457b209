"""Metrics of every worker of one server, so that any worker's scrape reports the whole server.

`keyport serve --workers N` runs N processes behind one port; a scrape reaches one of them. Each
worker writes its snapshot (services/observability/prometheus.py) to `<directory>/<pid>.json` every
`interval` seconds and just before it answers a scrape, then sums everyone's files. So a
scrape sees its own worker exactly and the others at most `interval` old. Snapshots are taken
on the event loop (the counters change there); files are written and read in a thread, as a
rename may wait for the disk. The directory is
made per run by `keyport serve` (KEYPORT_METRICS_DIR), so nothing of an earlier run counts.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from keyport.services.observability.prometheus import Snapshot, merge
from keyport.services.runtime.periodic import PeriodicTask

PUBLISH_INTERVAL = 1.0  # seconds


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SharedMetrics:
    def __init__(
        self,
        directory: Path,
        take_snapshot: Callable[[], list[Snapshot]],
        *,
        interval: float = PUBLISH_INTERVAL,
        pid: int | None = None,
    ) -> None:
        self._directory = directory
        self._take_snapshot = take_snapshot
        self._interval = interval
        self._pid = pid if pid is not None else os.getpid()
        self._loop: PeriodicTask | None = None  # only a started (serving) process shares

    @property
    def _own_file(self) -> Path:
        return self._directory / f"{self._pid}.json"

    def publish(self, snapshot: list[Snapshot] | None = None) -> list[Snapshot]:
        """Writes this worker's snapshot (atomically: a reader never sees half) and returns it."""
        if snapshot is None:
            snapshot = self._take_snapshot()
        self._directory.mkdir(parents=True, exist_ok=True)
        partial = self._directory / f".{self._pid}.json.tmp"
        partial.write_text(json.dumps(snapshot))
        partial.replace(self._own_file)
        return snapshot

    async def whole_server_now(self) -> list[Snapshot]:
        """`whole_server` with the file work off the event loop."""
        return await asyncio.to_thread(self.whole_server, self._take_snapshot())

    def whole_server(self, own: list[Snapshot] | None = None) -> list[Snapshot]:
        """Every worker's families summed; this worker's as of now (or as `own` says)."""
        processes: list[Sequence[Snapshot]] = [self.publish(own)]
        live = [True]
        for path in sorted(self._directory.glob("*.json")):
            if path == self._own_file or not path.stem.isdigit():
                continue
            try:
                processes.append(json.loads(path.read_text()))
            except (OSError, ValueError):  # vanished or unreadable: skip this once
                continue
            live.append(_alive(int(path.stem)))
        return merge(processes, live)

    async def start(self) -> None:
        await self._publish_now()
        # Graceful: a write in progress finishes before stop() writes the final counts.
        self._loop = PeriodicTask(
            "metrics-sharing",
            self._publish_now,
            interval=self._interval,
            wait_first=True,
            graceful=True,
            failure_message=f"cannot write metrics to {self._directory}",
        )
        await self._loop.start()

    async def stop(self) -> None:
        """Only a started (serving) process has anything to share; the CLI's do not."""
        if self._loop is None:
            return
        await self._loop.stop()
        self._loop = None
        # The final counts of a stopping worker still count.
        await self._publish_now()

    async def _publish_now(self) -> None:
        await asyncio.to_thread(self.publish, self._take_snapshot())
