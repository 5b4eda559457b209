"""Server processes for the benchmark: start on a free loopback port, wait, measure CPU, stop.

Every server runs in its own session (process group), so stopping it also reaches the
workers it forked, and Ctrl-C in the terminal does not hit it before we stop it ourselves.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import _cpu

HOST = "127.0.0.1"
ERROR_WORDS = ("Traceback", "Exception", "ERROR", "Error", "error")
_started_groups: list[int] = []


class ServerError(RuntimeError):
    """A server did not start, died, or did not answer in time."""


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def start_server(
    name: str, argv: list[str], env: dict[str, str], port: int, log_path: Path, cwd: Path
) -> Server:
    log = log_path.open("wb")
    try:
        process = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        log.close()
    _started_groups.append(process.pid)
    return Server(name=name, process=process, port=port, log_path=log_path)


def http_status(
    url: str, headers: dict[str, str], timeout: float = 5.0, max_bytes: int = 2048
) -> tuple[int, bytes]:
    """GET url; return (status, body) for any HTTP answer, raise OSError if none came."""
    request = urllib.request.Request(url, headers=headers, method="GET")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), response.read(max_bytes)
    except urllib.error.HTTPError as error:
        return int(error.code), error.read(max_bytes)


def wait_ready(server: Server, path: str, timeout: float) -> None:
    """Poll until the server answers anything on path (any status counts as up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ServerError(
                f"{server.name} exited with code {server.process.returncode} during start-up:\n"
                f"{server.log_tail()}"
            )
        try:
            http_status(server.base_url + path, {}, timeout=1.0)
            return
        except OSError:
            time.sleep(0.1)
    raise ServerError(
        f"{server.name} did not answer {path} within {timeout:.0f}s:\n{server.log_tail()}"
    )


def wait_idle(server: Server, timeout: float, threshold_cores: float = 0.05) -> None:
    """Wait until all processes of the server are idle: every worker has finished start-up.

    With several workers, the first answer to the readiness probe only proves that one worker
    is up; connections opened while another is still importing would all land on the first.
    """
    deadline = time.monotonic() + timeout
    quiet_samples = 0
    while time.monotonic() < deadline and quiet_samples < 3:
        before = _cpu.sample(server.process.pid)
        time.sleep(0.3)
        used = sum(_cpu.usage_between(before, _cpu.sample(server.process.pid)).server_cores)
        quiet_samples = quiet_samples + 1 if used < threshold_cores else 0


def stop_server(server: Server, timeout: float = 10.0) -> str:
    """SIGTERM the server, wait for a clean exit, then SIGKILL whatever is left of its group."""
    code = server.process.poll()
    outcome = f"had already exited with code {code}"
    if code is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            outcome = _exit_description(server.process.wait(timeout=timeout))
        except subprocess.TimeoutExpired:
            outcome = f"did not exit {timeout:.0f}s after SIGTERM: killed"
    _wait_group_gone(server.process.pid, timeout=3.0)
    try:
        os.killpg(server.process.pid, signal.SIGKILL)
        if outcome.startswith("stopped cleanly"):
            outcome += " (processes left behind in its group: killed)"
    except (ProcessLookupError, PermissionError):
        pass
    server.process.wait(timeout=timeout)
    return outcome


def save_log_excerpt(source: Path, dest: Path, head: int = 20, tail: int = 100) -> None:
    """Copy the start, the end and up to 200 error lines of a server log (request logs at
    thousands of lines a second would otherwise fill the disk)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    first: list[str] = []
    last: deque[str] = deque(maxlen=tail)
    errors: list[str] = []
    total = 0
    with source.open(errors="replace") as lines:
        for total, line in enumerate(lines, start=1):
            if total <= head:
                first.append(line)
                continue
            last.append(line)
            if len(errors) < 200 and any(word in line for word in ERROR_WORDS):
                errors.append(line)
    skipped = max(total - head - len(last), 0)
    marker = [f"[... {skipped} lines skipped; error lines among them follow ...]\n"]
    parts = [first, marker, errors, ["[... end of error lines ...]\n"]] if skipped else [first]
    dest.write_text("".join(itertools.chain(*parts, last)))


def _wait_group_gone(pgid: int, timeout: float) -> None:
    # Helpers such as multiprocessing's resource tracker exit shortly after the parent.
    deadline = time.monotonic() + timeout
    while _cpu.group_cpu_ticks(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)


def _exit_description(code: int) -> str:
    # uvicorn re-raises the signal after a graceful shutdown, so -SIGTERM is a clean exit too.
    if code in (0, -signal.SIGTERM):
        return f"stopped cleanly (exit code {code})"
    return f"exited with code {code} after SIGTERM"


@atexit.register
def _kill_leftover_groups() -> None:
    """Last resort (e.g. a second Ctrl-C during a stop): no server outlives the harness."""
    for pgid in _started_groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
