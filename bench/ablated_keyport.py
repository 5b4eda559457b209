#!/usr/bin/env python3
"""`keyport` with parts of its work switched off, to learn what each part costs (ablation).

Pass it as the server of a benchmark that takes `--keyport`, and name the parts to switch off
in KEYPORT_BENCH_ABLATE (comma-separated), e.g. from the repository root:

    KEYPORT_BENCH_ABLATE=usage-recording .venv/bin/python bench/many_keys.py --keys 10000 \\
        --rounds 1 --duration 10 --full-rings --keyport bench/ablated_keyport.py

Never for production: what is switched off is simply not done (usage is lost).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _no_usage_recording() -> None:
    """Requests are not recorded for usage at all (nothing to drain or write)."""
    from keyport.services.observability.usage_recorder import UsageRecorder

    def observe(self: Any, record: Any) -> None:
        return None

    UsageRecorder.observe = observe  # type: ignore[method-assign]


def _no_usage_writes() -> None:
    """Requests are recorded and drained every flush, the batch is dropped unwritten."""
    from keyport.db.usage_store import SqlUsageStore

    async def write(self: Any, batch: Any) -> None:
        return None

    SqlUsageStore.write = write  # type: ignore[method-assign]


def _no_ring_writes() -> None:
    """Everything is written but the rings of recent requests."""
    from keyport.db.usage_store import SqlUsageStore

    original = SqlUsageStore.write

    async def write(self: Any, batch: Any) -> None:
        batch.recent = []
        await original(self, batch)

    SqlUsageStore.write = write  # type: ignore[method-assign]


ABLATIONS: dict[str, Callable[[], None]] = {
    "usage-recording": _no_usage_recording,
    "usage-writes": _no_usage_writes,
    "ring-writes": _no_ring_writes,
}


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    for name in filter(None, os.environ.get("KEYPORT_BENCH_ABLATE", "").split(",")):
        if name not in ABLATIONS:
            sys.exit(f"unknown ablation {name!r}; known: {', '.join(ABLATIONS)}")
        ABLATIONS[name]()
    from keyport.cli import main as keyport_main

    sys.argv[0] = "keyport"
    keyport_main()


if __name__ == "__main__":
    main()
