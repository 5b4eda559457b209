"""A PostgreSQL and a Redis of the test's own, on free ports in a temporary folder, that a fault
test may stop, kill and restart: the shared ones on 5432 and 6379 belong to everyone else.

PostgreSQL refuses to run as root, so as root it runs as the `postgres` user (which Debian's
package creates). Everything is stopped and deleted when the test is done, whatever happened.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.server import free_port


def _need(found: str | None, what: str) -> str:
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail(f"{what} is needed for the fault tests")
    pytest.skip(f"{what} is not installed")


def _wait_until(ready: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} did not come up in {timeout:.0f} s")


class PrivatePostgres:
    def __init__(self) -> None:
        binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        self._bin = Path(_need(binaries[-1] if binaries else None, "PostgreSQL")).parent
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="keyport-pg-"))
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.folder, "postgres", "postgres")
        self._data = self.folder / "data"
        self.log = self.folder / "postgres.log"
        self._run("initdb", "-D", str(self._data), "-A", "trust", "-U", "postgres", "--no-sync")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str, check: bool = True) -> None:
        command = [str(self._bin / tool), *args]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"{tool} failed: {result.stdout}{result.stderr}")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
            # No fsync (a crash here is the server's, never the machine's: the OS keeps what was
            # written), but commits wait for their WAL write as in production: with
            # synchronous_commit=off an `immediate` stop lost a revocation committed
            # moments before, and the revoked key worked again after the restart.
            "-c fsync=off -c full_page_writes=off"
        )
        self._run(
            "pg_ctl", "-D", str(self._data), "-o", options, "-l", str(self.log), "-w", "start"
        )

    def is_running(self) -> bool:
        try:
            self._run("pg_ctl", "-D", str(self._data), "status")
        except AssertionError:
            return False
        return True

    def ensure_running(self) -> None:
        if not self.is_running():
            self.start()

    def stop(self, mode: str = "fast") -> None:
        """`fast` ends every connection and shuts down cleanly; `immediate` is a crash."""
        self._run("pg_ctl", "-D", str(self._data), "-m", mode, "-w", "stop", check=False)

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)


class PrivateRedis:
    def __init__(self) -> None:
        self._server = _need(shutil.which("redis-server"), "redis-server")
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="keyport-redis-"))
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = (self.folder / "redis.log").open("ab")
        self._process = subprocess.Popen(
            [
                self._server,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()  # the process keeps its own descriptor
        _wait_until(self._answers, "redis-server")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)  # a crash: no goodbye to the clients
            self._process.wait(10)
        self._process = None

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
