"""CPU a request costs in one process, from the bytes of a request to the bytes of its answer,
without sockets or a load generator: uvicorn's protocol is fed each request as a connection's
`data_received` would be, and the answer is taken from a transport that keeps nothing.

Why: on the shared 2-core VMs the machine's speed halves or doubles within minutes, so two `wrk`
runs a minute apart can disagree more than the change being measured
(bench/hotpath_compare.py's rounds swing 0.34-0.64 for one ratio). Here the configurations
take turns in batches of a few thousand requests, a fraction of a second each, and each
batch's cost is compared with the raw hello's batch right before and after it.

Configurations (all on uvloop, the loop `keyport serve` runs):
- `raw`: bench/raw_hello.py on uvicorn's own httptools protocol (the issue's "raw ASGI hello");
- `keyport`: `GET /v4/user/me` on Keyport's protocol and app, default settings (SQLite, request
  log on, usage recording on), limits raised: the express lane answers;
- `keyport-usual`: the same, the express lane switched off (every request as an ASGI cycle);
- `keyport-nolog`: the same as `keyport`, KEYPORT_REQUEST_LOG=false.

The two Keyport apps run side by side in this process, each with its background tasks (usage
flush, invalidation poll, request-log writes): their CPU is charged to whichever batch runs,
which evens out over the rounds.

What it leaves out is the same for every configuration: the kernel's socket work (a recv and a
send a request) and wrk. So "own work" (a configuration's µs minus raw's) is the issue's
"Keyport's own work per request"; the ratio raw / keyport here is lower than a served ratio,
which adds the kernel's share to both.

    .venv/bin/python bench/protocol_cost.py --rounds 20 --batch 3000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import uvloop
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import _keyport
from bench.raw_hello import app as raw_app

KEYPORT = Path(sys.executable).with_name("keyport")
CONFIGS = ("raw", "keyport", "keyport-usual", "keyport-nolog")
LIMITS = {
    "KEYPORT_RATE_LIMIT": "1000000",
    "KEYPORT_RATE_LIMIT_BURST": "1000000",
    "KEYPORT_AUTH_FAILURE_LIMIT": "1000000",
}


class NullTransport:
    """Keeps nothing; counts answers (a write that starts with a status line)."""

    def __init__(self) -> None:
        self.answers = 0
        self.closed = False

    def write(self, data: bytes) -> None:
        if data.startswith(b"HTTP/1.1 "):
            self.answers += 1

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_extra_info(self, name: str) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(name)


class Connection:
    def __init__(self, app: Any, protocol_class: type[HttpToolsProtocol], request: bytes) -> None:
        config = Config(
            app=app, proxy_headers=False, lifespan="off", log_config=None, access_log=False
        )
        config.load()
        state = ServerState()
        state.default_headers = [(b"date", b"Tue, 01 Dec 2026 12:00:00 GMT")]
        self.protocol = protocol_class(config=config, server_state=state, app_state={})
        self.transport = NullTransport()
        self.protocol.connection_made(self.transport)  # type: ignore[arg-type]
        self.request = request

    async def batch(self, count: int) -> float:
        """CPU seconds for `count` requests, one after another on this connection."""
        protocol, transport, request = self.protocol, self.transport, self.request
        started = time.process_time()
        for _ in range(count):
            expected = transport.answers + 1
            protocol.data_received(request)
            while transport.answers < expected:
                await asyncio.sleep(0)
        return time.process_time() - started


@contextlib.contextmanager
def stdout_discarded() -> Iterator[None]:
    """The request log writes to file descriptor 1: send it to /dev/null meanwhile."""
    saved = os.dup(1)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    try:
        yield
    finally:
        os.dup2(saved, 1)
        os.close(null)
        os.close(saved)


async def keyport_app(env: dict[str, str]) -> tuple[Any, Callable[[], Any]]:
    """Keyport's app from `env`, its lifespan started (background tasks run as served)."""
    from keyport.web.asgi import create_app_from_env

    os.environ.update(env)
    app = create_app_from_env()
    started = asyncio.get_running_loop().create_future()
    stopping = asyncio.Event()

    async def receive() -> dict[str, Any]:
        if not started.done():
            return {"type": "lifespan.startup"}
        await stopping.wait()
        return {"type": "lifespan.shutdown"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "lifespan.startup.complete":
            started.set_result(None)

    task = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send))
    await started

    async def stop() -> None:
        stopping.set()
        await task

    return app, stop


def request_bytes(path: str, key: str | None) -> bytes:
    auth = f"Authorization: Bearer {key}\r\n".encode() if key else b""
    return b"GET " + path.encode() + b" HTTP/1.1\r\nHost: bench\r\n" + auth + b"\r\n"


async def measure(args: argparse.Namespace, setup: _keyport.KeyportSetup) -> dict[str, list[float]]:
    from keyport.web.http_protocol import KeyportHttpProtocol

    base = {"KEYPORT_DATABASE_URL": setup.database_url, **LIMITS}
    me = request_bytes("/v4/user/me", setup.key)
    connections: dict[str, Connection] = {"raw": Connection(raw_app, HttpToolsProtocol, b"")}
    connections["raw"].request = request_bytes("/", None)
    stops = []
    for name, extra in (("keyport", {}), ("keyport-nolog", {"KEYPORT_REQUEST_LOG": "false"})):
        app, stop = await keyport_app({**base, "KEYPORT_REQUEST_LOG": "true", **extra})
        stops.append(stop)
        connections[name] = Connection(app, KeyportHttpProtocol, me)
        if name == "keyport":
            usual = connections["keyport-usual"] = Connection(app, KeyportHttpProtocol, me)
            usual.protocol._answer_now = None  # type: ignore[attr-defined]
    names = [n for n in CONFIGS if n in args.configs]
    for connection in connections.values():
        await connection.batch(args.batch)  # warm: caches, leases, code paths
    costs: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(args.rounds):
        order = names if round_ % 2 == 0 else list(reversed(names))
        for name in order:
            costs[name].append(await connections[name].batch(args.batch) / args.batch)
    for stop in stops:
        await stop()
    return costs


def report(costs: dict[str, list[float]]) -> None:
    raw = costs.get("raw")
    print("\nµs of CPU a request (median over rounds; one process, no sockets):", file=sys.stderr)
    for name, values in costs.items():
        print(f"  {name:15} {statistics.median(values) * 1e6:7.1f}", file=sys.stderr)
    if not raw:
        return
    print("\nper round, against the raw hello of the same round:", file=sys.stderr)
    for name, values in costs.items():
        if name == "raw":
            continue
        own = [(v - r) * 1e6 for v, r in zip(values, raw, strict=True)]
        ratios = [r / v for v, r in zip(values, raw, strict=True)]
        print(
            f"  {name:15} own work {statistics.median(own):6.1f} µs "
            f"[{min(own):.1f}-{max(own):.1f}]   raw/this {statistics.median(ratios):.2f} "
            f"[{min(ratios):.2f}-{max(ratios):.2f}]",
            file=sys.stderr,
        )
    pairs = (("keyport", "keyport-usual"), ("keyport", "keyport-nolog"))
    for a, b in pairs:
        if a in costs and b in costs:
            ratio = statistics.median(y / x for x, y in zip(costs[a], costs[b], strict=True))
            print(f"  {b} / {a} CPU a request: {ratio:.2f}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--batch", type=int, default=3000, help="requests per turn")
    parser.add_argument("--configs", default=",".join(CONFIGS))
    args = parser.parse_args()
    args.configs = args.configs.split(",")
    with tempfile.TemporaryDirectory(prefix="keyport-protocol-") as folder:
        setup = _keyport.set_up(KEYPORT, Path(folder), LIMITS)
        with stdout_discarded():
            costs = uvloop.run(measure(args, setup))
    report(costs)


if __name__ == "__main__":
    main()
