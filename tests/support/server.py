"""Running the `keyport` command: servers as subprocesses, CLI invocations in-process.

`run_cli` calls the entry point (`keyport.cli:main`) inside the test process with Click's
test runner: the same argument parsing, exit codes, stdout and stderr, without a Python start
and the server's imports (~0.8 s a call under load). `run_cli_process` runs the installed
`keyport` script for the few tests whose subject is the process boundary itself.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KEYPORT = str(Path(sys.executable).with_name("keyport"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def keyport_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYPORT_")}
    env.update(
        {
            "KEYPORT_DATABASE_URL": database_url,
            "KEYPORT_PASSWORD_TIME_COST": "1",
            "KEYPORT_PASSWORD_MEMORY_COST": "64",
        }
    )
    env.update(extra)
    return env


def run_cli(
    env: dict[str, str], *args: str, check: bool = True, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`keyport ARGS` in this process, with exactly `env` as its environment."""
    from click.testing import CliRunner

    from keyport.cli import main

    overrides: dict[str, str | None] = {name: None for name in os.environ if name not in env}
    overrides.update(env)
    runner = CliRunner()
    saved_argv = sys.argv
    sys.argv = ["keyport", *args]
    try:
        with runner.isolation(input=input, env=overrides) as (stdout, stderr, _):
            try:
                main()
                code: object = 0
            except SystemExit as done:
                code = done.code
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
            out, err = stdout.getvalue().decode(), stderr.getvalue().decode()
    finally:
        sys.argv = saved_argv
    if code is None:
        code = 0
    elif not isinstance(code, int):  # sys.exit("message"): printed, status 1
        out, err, code = out, f"{err}{code}\n", 1
    result = subprocess.CompletedProcess(["keyport", *args], code, out, err)
    if check and result.returncode != 0:
        raise AssertionError(f"keyport {' '.join(args)} failed: {result.stderr}")
    return result


def run_cli_process(
    env: dict[str, str], *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """`keyport ARGS` as a real process of the installed script."""
    result = subprocess.run(
        [KEYPORT, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"keyport {' '.join(args)} failed: {result.stderr}")
    return result


def cli_json(env: dict[str, str], *args: str) -> Any:
    return json.loads(run_cli(env, *args, "--json").stdout)


@dataclass
class ServerProcess:
    """`keyport serve` in a subprocess; everything it prints goes to `log_path`."""

    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    workers: int = 1
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> ServerProcess:
        self.launch()
        return self.wait_ready(timeout)

    def launch(self) -> ServerProcess:
        """Starts the process without waiting for it (`wait_ready`): several start at once."""
        with self.log_path.open("ab") as log:  # the process keeps its own descriptor
            self.process = subprocess.Popen(
                [KEYPORT, "serve", "--port", str(self.port), "--workers", str(self.workers)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def wait_ready(self, timeout: float = 30.0) -> ServerProcess:
        assert self.process is not None, "launch() first"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited early:\n{self.output()}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/healthz", timeout=1) as answer:
                    if answer.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise AssertionError(f"server did not become ready:\n{self.output()}")

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            return self.process.wait(5)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def start_all(servers: list[ServerProcess], timeout: float = 60.0) -> list[ServerProcess]:
    """Starts the servers at once and waits until each answers; all are stopped if one fails."""
    try:
        for server in servers:
            server.launch()
        for server in servers:
            server.wait_ready(timeout)
    except BaseException:
        for server in servers:
            server.stop()
        raise
    return servers
