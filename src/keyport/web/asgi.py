"""The ASGI entry point for servers (uvicorn workers, Granian): settings from the environment,
then the app, then the process's heap settled for serving."""

from __future__ import annotations

import gc
import os

from keyport.bootstrap import build_container
from keyport.config import Settings
from keyport.web import log_lines
from keyport.web.app import create_app
from keyport.web.gate import ApiGate

# A full collection scans every object the collector tracks. Serving promotes objects that live
# a moment (a request's record until the next usage flush, a cached key until it is refreshed)
# into the oldest generation all the time, so with 10,000 keys in use the default thresholds
# ran a full collection every few seconds, 100-250 ms each on a slow machine (~10 % of a
# busy worker's time, and its p99). Cyclic garbage is rare here (refcounting frees requests).
# A larger young generation lets a request's objects die before a collection looks at them,
# and traverses the objects that do outlive a request (a pending usage record) less often.
YOUNG_COLLECTION_EVERY = 10_000  # net allocations of tracked objects (CPython's default: 700)
FULL_COLLECTION_EVERY = 100  # collections of the middle generation (CPython's default: 10)


def create_app_from_env() -> ApiGate:
    log_lines.install()
    app = create_app(build_container(Settings.from_env(os.environ)))
    settle_heap()
    return app


def settle_heap() -> None:
    """Everything built so far (modules, the app, the container) lives as long as the process:
    move it out of the collector's sight, and run full collections less often."""
    gc.collect()
    gc.freeze()
    _, middle, _ = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, middle, FULL_COLLECTION_EVERY)
