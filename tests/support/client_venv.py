"""keyport-client as an app's developer installs it: `pip install ./clients/python` into a
fresh virtual environment, and the example apps run from there on real servers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import sysconfig
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.server import free_port

REPO = Path(__file__).resolve().parents[2]
CLIENT = REPO / "clients" / "python"
EXAMPLES = CLIENT / "examples"


@dataclass(frozen=True)
class ClientVenv:
    python: Path
    installed: list[str]  # the distributions `pip install ./clients/python` left, by name
    site_packages: Path

    def run(self, code: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.python), "-c", code], capture_output=True, text=True, timeout=60, check=False
        )


def make_client_venv(folder: Path) -> ClientVenv:
    """A new venv holding only keyport-client and what it pulls in; then, for the example apps,
    the frameworks and servers of the project's own environment (its pinned dev dependencies)
    are made visible behind it through a `.pth` file — after `installed` was read."""
    # Without a pip of its own (ensurepip costs seconds): this environment's pip installs into
    # it, resolving keyport-client's dependencies from the package index as any app's would.
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True, timeout=120
    )
    python = folder / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python), "--disable-pip-version-check"]
    subprocess.run([*pip, "install", "--quiet", str(CLIENT)], check=True, timeout=600)
    listed = subprocess.run(
        [*pip, "list", "--format=json"], check=True, capture_output=True, text=True, timeout=60
    )
    installed = sorted(entry["name"].lower() for entry in json.loads(listed.stdout))
    site_packages = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    frameworks = sysconfig.get_paths()["purelib"]  # this (the server's) environment's
    (site_packages / "zz_frameworks.pth").write_text(frameworks + "\n")
    return ClientVenv(python, installed, site_packages)


@dataclass
class AppProcess:
    """An example app on its real server, from the client venv; output in `log_path`."""

    venv: ClientVenv
    command: list[str]  # after `python -m`; `{port}` is filled in
    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def launch(self) -> AppProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYPORT_", "PYTHON"))}
        env.update(self.env)
        command = [part.format(port=self.port) for part in self.command]
        with self.log_path.open("ab") as out:  # the process keeps its own descriptor
            self.process = subprocess.Popen(
                [str(self.venv.python), "-m", *command],
                cwd=EXAMPLES,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def wait_ready(self, timeout: float = 60.0) -> AppProcess:
        assert self.process is not None, "launch() first"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"app exited early:\n{self.output()}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/health", timeout=1) as answer:
                    if answer.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise AssertionError(f"app did not become ready:\n{self.output()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


# How each example runs, as its docs page says: (module and arguments after `python -m`).
SERVERS: dict[str, list[str]] = {
    "fastapi": [
        "uvicorn",
        "fastapi_app:app",
        "--port",
        "{port}",
        "--no-access-log",
        "--no-proxy-headers",
    ],
    "django-wsgi": ["gunicorn", "--workers", "2", "--bind", "127.0.0.1:{port}", "django_app"],
    "django-asgi": [
        "uvicorn",
        "django_app:asgi",
        "--port",
        "{port}",
        "--no-access-log",
        "--no-proxy-headers",
    ],
    "flask": ["gunicorn", "--workers", "2", "--bind", "127.0.0.1:{port}", "flask_app:app"],
}
# Where each example creates an order (a Django view's scope covers all its methods).
CREATE_PATH = {
    "fastapi": "/orders",
    "django-wsgi": "/orders/new",
    "django-asgi": "/orders/new",
    "flask": "/orders",
}
