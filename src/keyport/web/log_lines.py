"""How a served process writes its log: one line for an expected outage, a traceback for a bug.

A database or Redis that is down, restarting or unreachable is an operator's everyday event and
heals by itself (docs/operations.md, "Faults"): whoever logs it — Keyport's loops, the drivers'
own pools — it becomes one line naming the error's class and message. Every other exception
keeps its traceback, so a traceback in the log always means a bug.
"""

from __future__ import annotations

import logging

from keyport.db.outages import causes, is_storage_unavailable

_MAX_DETAIL = 200  # characters of the error's message: drivers add long hints


class OutageLines(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is not None and is_storage_unavailable(error):
            record.msg = f"{record.getMessage()} ({describe(error)})"
            record.args = None
            record.exc_info = record.exc_text = None
        return True


def describe(error: BaseException) -> str:
    """`ConnectionRefusedError: [Errno 111] Connection refused`: the deepest cause, one line."""
    *_, deepest = causes(error)
    detail = str(deepest).strip().splitlines()[0] if str(deepest).strip() else ""
    return f"{type(deepest).__name__}: {detail[:_MAX_DETAIL]}".rstrip(": ")


def install() -> None:
    """Every record that reaches the root logger passes the filter; without a handler of the
    host's, one on stderr (what Python's last-resort handler would have written)."""
    root = logging.getLogger()
    if not root.handlers:
        handler: logging.Handler = logging.StreamHandler()
        handler.setLevel(logging.WARNING)
        root.addHandler(handler)
    for handler in root.handlers:
        if not any(isinstance(f, OutageLines) for f in handler.filters):
            handler.addFilter(OutageLines())
