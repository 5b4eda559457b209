"""keyport-client's middleware benchmark: what asking Keyport adds to a FastAPI hello.

Run: .venv/bin/python bench/middleware_bench.py [--requests 3000] [--rounds 6] [--duration 5]

Two FastAPI hello apps on uvicorn (one worker each, uvloop and httptools, no access log), the
same code with and without `keyport_client.asgi.KeyportMiddleware`, and one Keyport worker
(SQLite, rate limits too high to trip) — free 127.0.0.1 ports only, all stopped at the end.

1. Added latency at 1 connection: one keep-alive client sends `--requests` sequential requests
   to each app, alternating blocks of `--requests / --rounds` so that the machine's drift hits
   both alike; the added latency is the guarded median minus the unguarded one (target
   ≤ 0.5 ms). Keyport's own `/v1/authorize` at 1 connection is measured alike, for scale: the
   middleware cannot add less than that round trip.
2. Throughput: wrk with 16 connections for `--duration` seconds against each app, alternated
   twice; the guarded app's req/s as a share of the unguarded one's.

The machine is shared and has 2 cores: wrk, the app, Keyport and anything else running share
them, so throughput figures move between runs; run it when the machine is quiet.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import _keyport
from _procs import HOST, Server, free_port, start_server, stop_server, wait_idle, wait_ready
from _wrk import run_wrk, write_script

VENV_BIN = Path(sys.executable).parent  # run with the repository's .venv/bin/python


def python_bin() -> str:
    return sys.executable


KEYPORT_ENV = {
    "KEYPORT_RATE_LIMIT": "1000000",
    "KEYPORT_RATE_LIMIT_BURST": "1000000",
    "KEYPORT_AUTH_FAILURE_LIMIT": "1000000",
    "KEYPORT_TRUSTED_PROXIES": HOST,
    "KEYPORT_REQUEST_LOG": "false",
    "KEYPORT_USAGE_RECORDING": "true",
}
APP = """\
import os

from fastapi import FastAPI

app = FastAPI()
if os.environ.get("GUARDED") == "1":
    from keyport_client.asgi import KeyportMiddleware

    app.add_middleware(KeyportMiddleware, keyport_url=os.environ["KEYPORT_URL"])


@app.get("/hello")
async def hello() -> dict[str, str]:
    return {"hello": "world"}
"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=3000, help="per app, at 1 connection")
    parser.add_argument("--rounds", type=int, default=6, help="alternating blocks")
    parser.add_argument("--duration", type=int, default=5, help="seconds of wrk per run")
    parser.add_argument("--connections", type=int, default=16, help="wrk's connections")
    return parser.parse_args()


class KeepAlive:
    """A minimal keep-alive HTTP/1.1 client: the same small cost for every server measured."""

    def __init__(self, port: int, path: str, headers: dict[str, str]) -> None:
        lines = [f"GET {path} HTTP/1.1", f"Host: {HOST}:{port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.request = ("\r\n".join(lines) + "\r\n\r\n").encode()
        self.sock = socket.create_connection((HOST, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.file = self.sock.makefile("rb")

    def once(self) -> float:
        started = time.perf_counter()
        self.sock.sendall(self.request)
        status = self.file.readline()
        length = 0
        while (line := self.file.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        self.file.read(length)
        elapsed = time.perf_counter() - started
        if b" 200 " not in status:
            raise RuntimeError(f"expected 200, got {status!r}")
        return elapsed

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def latencies(clients: dict[str, KeepAlive], total: int, rounds: int) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {name: [] for name in clients}
    block = max(total // rounds, 1)
    for client in clients.values():
        for _ in range(200):  # warm-up: connections, caches, the pool to Keyport
            client.once()
    for _ in range(rounds):
        for name, client in clients.items():
            found[name] += [client.once() for _ in range(block)]
    return found


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f}"


def main() -> None:
    args = parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="keyport-middleware-bench-"))
    setup = _keyport.set_up(VENV_BIN / "keyport", workdir, KEYPORT_ENV)
    auth = {"Authorization": f"Bearer {setup.key}"}
    (workdir / "hello_app.py").write_text(APP)
    servers: list[Server] = []
    try:
        port = free_port()
        argv = [str(VENV_BIN / "keyport"), "serve", "--host", HOST, "--port", str(port)]
        env = _keyport.server_env(setup.database_url, KEYPORT_ENV)
        keyport = start_server("keyport", argv, env, port, workdir / "keyport.log", workdir)
        servers.append(keyport)
        wait_ready(keyport, "/healthz", 60)
        apps: dict[str, Server] = {}
        for name, guarded in [("unguarded", "0"), ("guarded", "1")]:
            port = free_port()
            uvicorn = [python_bin(), "-m", "uvicorn", "hello_app:app", "--host", HOST]
            uvicorn += ["--port", str(port), "--no-access-log", "--no-proxy-headers"]
            uvicorn += ["--loop", "uvloop", "--http", "httptools", "--log-level", "warning"]
            app_env = {**env, "GUARDED": guarded, "KEYPORT_URL": keyport.base_url}
            apps[name] = start_server(
                name, uvicorn, app_env, port, workdir / f"{name}.log", workdir
            )
            servers.append(apps[name])
            wait_ready(apps[name], "/hello", 60)
        for server in servers:
            wait_idle(server, 15)

        clients = {
            "unguarded": KeepAlive(apps["unguarded"].port, "/hello", auth),
            "guarded": KeepAlive(apps["guarded"].port, "/hello", auth),
            "keyport": KeepAlive(keyport.port, "/v1/authorize", auth),
        }
        measured = latencies(clients, args.requests, args.rounds)
        for client in clients.values():
            client.close()
        median = {name: statistics.median(values) for name, values in measured.items()}
        p90 = {name: statistics.quantiles(v, n=10)[-1] for name, v in measured.items()}
        added = median["guarded"] - median["unguarded"]
        print(f"1 connection, {args.requests} requests each, {args.rounds} alternating blocks")
        print("| target | median ms | p90 ms |")
        print("|---|---:|---:|")
        print(f"| FastAPI hello, unguarded | {ms(median['unguarded'])} | {ms(p90['unguarded'])} |")
        print(f"| FastAPI hello, guarded | {ms(median['guarded'])} | {ms(p90['guarded'])} |")
        print(f"| Keyport /v1/authorize alone | {ms(median['keyport'])} | {ms(p90['keyport'])} |")
        verdict = "PASS" if added <= 0.0005 else "FAIL"
        print(f"added latency (median): {ms(added)} ms — target ≤ 0.500 ms: {verdict}")

        script = write_script(workdir / "auth.lua", auth)
        rates: dict[str, list[float]] = {"unguarded": [], "guarded": []}
        for _ in range(2):
            for name, server in apps.items():
                result = run_wrk(
                    server.base_url + "/hello", script, args.duration, args.connections
                )
                if result.non_2xx_3xx:
                    raise RuntimeError(f"{name}: {result.non_2xx_3xx} answers were not 2xx")
                rates[name].append(result.requests_per_sec)
        best = {name: max(values) for name, values in rates.items()}
        print(f"\nwrk -c{args.connections}, {args.duration} s a run, best of 2 (alternated)")
        print("| app | req/s (each run) | best |")
        print("|---|---|---:|")
        for name, values in rates.items():
            shown = ", ".join(f"{value:.0f}" for value in values)
            print(f"| FastAPI hello, {name} | {shown} | {best[name]:.0f} |")
        print(f"guarded / unguarded throughput: {best['guarded'] / best['unguarded']:.2f}")
    finally:
        for server in reversed(servers):
            stop_server(server)


if __name__ == "__main__":
    print(textwrap.dedent(__doc__ or "").split("\n")[0])
    main()
