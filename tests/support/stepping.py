"""For unit tests of the request path's concurrency: a monotonic clock the test moves, and
stepping the event loop until a condition holds (a bounded number of steps, no timing)."""

from __future__ import annotations

import asyncio


class Ticking:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


async def until(condition: object) -> None:
    for _ in range(1_000):
        if callable(condition) and condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never met")
