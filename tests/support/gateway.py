"""Real reverse proxies for the gateway tests: nginx and Caddy running the configuration that
`keyport proxy-config` prints, in front of a tiny upstream that echoes what it received —
Python's http.server, or one that reads the request as a common parser does (WHATWG URL
parsing under Node, a percent-decoding ASGI server, WSGI)."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.support.server import free_port, run_cli

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
CADDY = shutil.which("caddy") or "/usr/bin/caddy"
NODE = shutil.which("node") or "/usr/bin/node"
_SUPPORT = Path(__file__).resolve().parent


class _Echo(BaseHTTPRequestHandler):
    """Answers every request with what it saw: method, path, headers (names lower-cased)."""

    protocol_version = "HTTP/1.1"

    def _echo(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        seen = {
            "method": self.command,
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body.decode("latin-1"),
        }
        encoded = json.dumps(seen).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Echo", "yes")
        self.send_header("Content-Length", str(len(encoded)))
        self.end_headers()
        self.wfile.write(encoded)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _echo  # noqa: N815 (http.server names)

    def log_message(self, *args: Any) -> None:  # quiet
        pass


class EchoUpstream:
    def __init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> EchoUpstream:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class ParsingUpstream:
    """An echo upstream in a process of its own that reads paths and headers as one common
    parser does: `whatwg` (Node's `new URL`), `asgi` (uvicorn) or `wsgi` (wsgiref). Its answer
    names the path it read (`path`), the target received and the headers, lower-cased."""

    def __init__(self, parser: str, directory: Path) -> None:
        self.parser = parser
        self.port = free_port()
        if parser == "whatwg":
            command = [NODE, str(_SUPPORT / "whatwg_echo.js"), str(self.port)]
        else:
            module = "tests.support.parsing_upstreams"
            command = [sys.executable, "-m", module, parser, str(self.port)]
        directory.mkdir(parents=True, exist_ok=True)
        self._log = directory / f"{parser}.log"
        with self._log.open("ab") as out:  # the process keeps its own descriptor
            self.process = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=_SUPPORT.parent.parent,
                start_new_session=True,
            )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ParsingUpstream:
        wait_for_port("127.0.0.1", self.port, self.process, self._log)
        return self

    def __exit__(self, *_: object) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(10)


def wait_for_port(host: str, port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"exited early:\n{log.read_text(errors='replace')}")
        with socket.socket(family) as probe:
            probe.settimeout(1)
            if probe.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {host}:{port}:\n{log.read_text()}")


@dataclass
class Proxy:
    """`keyport proxy-config KIND ...` printed, then run as is by nginx or Caddy."""

    kind: str  # "nginx" or "caddy"
    directory: Path
    keyport_url: str
    upstream_url: str
    env: dict[str, str]
    rules: tuple[str, ...] = ()
    options: tuple[str, ...] = ()  # more `proxy-config` options, e.g. --forward-authorization
    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def config_text(self) -> str:
        listen = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
        rules = [arg for rule in self.rules for arg in ("--scope", rule)]
        printed = run_cli(
            self.env,
            "proxy-config",
            self.kind,
            "--listen",
            listen,
            "--keyport",
            self.keyport_url,
            "--upstream",
            self.upstream_url,
            *rules,
            *self.options,
        )
        return printed.stdout

    def start(self) -> Proxy:
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self.directory / f"{self.kind}.conf"
        config.write_text(self.config_text())
        log = self.directory / "proxy.log"
        if self.kind == "nginx":
            command = [NGINX, "-p", str(self.directory), "-c", str(config)]
        else:
            command = [CADDY, "run", "--adapter", "caddyfile", "--config", str(config)]
        env = {**os.environ, "HOME": str(self.directory), "XDG_DATA_HOME": str(self.directory)}
        env["XDG_CONFIG_HOME"] = str(self.directory)
        with log.open("ab") as out:  # the process keeps its own descriptor
            self.process = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        wait_for_port(self.host, self.port, self.process, log)
        return self

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # names lower-cased
    body: bytes
    header_lines: list[tuple[str, str]] = field(default_factory=list)  # every line, in order

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    url: str, headers: dict[str, str] | None = None, method: str = "GET", body: bytes | None = None
) -> Answer:
    call = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(call, timeout=10) as answer:
            return Answer(
                answer.status, {k.lower(): v for k, v in answer.headers.items()}, answer.read()
            )
    except urllib.error.HTTPError as refused:
        return Answer(
            refused.code, {k.lower(): v for k, v in refused.headers.items()}, refused.read()
        )


def send_raw(
    base_url: str, target: str, headers: list[tuple[str, str]] | None = None, method: str = "GET"
) -> Answer:
    """A request with `target` exactly as given (a backslash, `#`, `%2F`, `..` stay as they
    are) and headers in the given order and spelling, repeated names included."""
    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host.strip("[]"), int(port), timeout=10)
    try:
        connection.putrequest(method, target, skip_accept_encoding=True)
        for name, value in headers or []:
            connection.putheader(name, value)
        connection.endheaders()
        raw = connection.getresponse()
        lines = [(k.lower(), v) for k, v in raw.getheaders()]
        return Answer(raw.status, dict(lines), raw.read(), lines)
    finally:
        connection.close()
