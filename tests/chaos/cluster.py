"""The cluster under test: a PostgreSQL and a Redis of the run's own, three `keyport serve`
hosts (each its own process and working folder, one shared `KEYPORT_SECRET_KEY`) and nginx
balancing them — the deployment docs/deployment.md describes — with the handles the faults use.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.private_services import PrivatePostgres, PrivateRedis
from tests.support.server import KEYPORT, free_port

HOSTS = 3
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def load_balancer_config(listen: str, hosts: list[str]) -> str:
    """The nginx `upstream` and `server` blocks that spread requests over Keyport hosts.

    docs/deployment.md ships exactly this text (a test holds them equal). A host that refuses
    connections or does not answer within 3 s is skipped for 2 s; idempotent requests (GET,
    HEAD) go on to the next host, so a crashed or paused host costs a client at most a delay.
    nginx sets X-Forwarded-For to the address it saw, so the hosts trust the balancer
    (`KEYPORT_TRUSTED_PROXIES`) and nothing a client sends in that header.
    """
    servers = "".join(f"    server {host} max_fails=1 fail_timeout=2s;\n" for host in hosts)
    return (
        "upstream keyport {\n"
        f"{servers}"
        "    keepalive 32;\n"
        "}\n"
        "server {\n"
        f"    listen {listen};\n"
        "    location / {\n"
        "        proxy_pass http://keyport;\n"
        "        proxy_http_version 1.1;\n"
        '        proxy_set_header Connection "";\n'
        "        proxy_set_header Host $host;\n"
        "        proxy_set_header X-Forwarded-For $remote_addr;\n"
        "        proxy_set_header X-Forwarded-Proto $scheme;\n"
        "        proxy_connect_timeout 1s;\n"
        "        proxy_send_timeout 3s;\n"
        "        proxy_read_timeout 3s;\n"
        "        proxy_next_upstream error timeout;\n"
        "        proxy_next_upstream_tries 3;\n"
        "        proxy_next_upstream_timeout 4s;\n"
        "    }\n"
        "}\n"
    )


def _standalone_nginx(folder: Path, blocks: str) -> str:
    """`blocks` inside a configuration that runs in the foreground with its files in `folder`."""
    temp = folder / "temp"
    temp.mkdir(exist_ok=True)
    paths = "".join(
        f"    {kind}_temp_path {temp / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    indented = "".join(f"    {line}\n" if line else "\n" for line in blocks.splitlines())
    return (
        "daemon off;\nworker_processes 1;\n"
        f"pid {folder / 'nginx.pid'};\nerror_log {folder / 'error.log'} warn;\n"
        "events { worker_connections 2048; }\n"
        "http {\n    access_log off;\n"
        f"{paths}{indented}"
        "}\n"
    )


@dataclass
class Host:
    """One `keyport serve` process in a folder of its own, killed and restarted by faults."""

    name: str
    folder: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    paused: bool = False

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.folder / "host.log"

    def launch(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [KEYPORT, "serve", "--port", str(self.port), "--workers", "1"],
                cwd=self.folder,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited:\n{self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://{self.address}/healthz", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"{self.name} did not become ready:\n{self.log.read_text()[-3000:]}")

    def signal(self, number: int) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, number)

    def kill(self) -> None:
        """kill -9: no goodbye, no flush."""
        self.signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(10)

    def pause(self) -> None:
        self.signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        self.signal(signal.SIGCONT)
        self.paused = False

    def stop(self) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.resume()
        self.signal(signal.SIGTERM)
        try:
            return self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.kill()
            return None


class Cluster:
    """Everything one run needs, in `folder`; `close()` removes every process it started."""

    def __init__(self, folder: Path, settings: dict[str, str]) -> None:
        self.folder = folder
        self.postgres = PrivatePostgres()
        self.redis = PrivateRedis()
        self.secret_key = secrets.token_urlsafe(32)
        self.settings = settings
        self.balancer_port = free_port()
        self.hosts: list[Host] = []
        self._nginx: subprocess.Popen[bytes] | None = None

    @property
    def database_url(self) -> str:
        return self.postgres.url.rsplit("/", 1)[0] + "/keyport"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.balancer_port}"

    def env(self) -> dict[str, str]:
        """What every host is given (docs/deployment.md, "Environment per host")."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("KEYPORT_")}
        env.update(
            {
                "KEYPORT_DATABASE_URL": self.database_url,
                "KEYPORT_REDIS_URL": self.redis.url,
                "KEYPORT_SECRET_KEY": self.secret_key,
                "KEYPORT_TRUSTED_PROXIES": "127.0.0.1",
                "KEYPORT_PUBLIC_URL": self.base_url,
                **self.settings,
            }
        )
        return env

    def start_stores(self) -> None:
        """PostgreSQL with an empty `keyport` database, and Redis; the caller migrates and seeds
        it before `start_hosts` (hosts starting together would each migrate at once)."""
        self.postgres.start()
        subprocess.run(
            ["psql", self.postgres.url, "-q", "-c", 'CREATE DATABASE "keyport"'],
            check=True,
            capture_output=True,
            timeout=30,
        )
        self.redis.start()

    def start_hosts(self) -> None:
        for number in range(1, HOSTS + 1):
            folder = self.folder / f"host{number}"
            folder.mkdir()
            self.hosts.append(Host(f"host{number}", folder, self.env()))
        for host in self.hosts:
            host.launch()
        for host in self.hosts:
            host.wait_ready()
        self._start_nginx()

    def _start_nginx(self) -> None:
        folder = self.folder / "nginx"
        folder.mkdir()
        blocks = load_balancer_config(
            f"127.0.0.1:{self.balancer_port}", [h.address for h in self.hosts]
        )
        config = folder / "nginx.conf"
        config.write_text(_standalone_nginx(folder, blocks))
        with (folder / "nginx.out").open("ab") as out:
            self._nginx = subprocess.Popen(
                [NGINX, "-p", str(folder), "-c", str(config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.balancer_port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"nginx did not start: {(folder / 'error.log').read_text()}")

    def restart_host(self, host: Host) -> None:
        host.launch()
        host.wait_ready()

    def restart_redis(self) -> None:
        """Redis crashes and comes back empty (it keeps nothing on disk, as here in production
        without persistence)."""
        self.redis.stop()
        self.redis.start()

    def drop_invalidation_channel(self) -> None:
        """Ends every pub/sub connection to Redis: the push channel is gone until its listeners
        reconnect, and evictions arrive only through the database log (the fallback)."""
        with socket.create_connection(("127.0.0.1", self.redis.port), timeout=1) as sock:
            sock.sendall(b"CLIENT KILL TYPE pubsub\r\n")
            sock.recv(64)

    def postgres_usage(self) -> tuple[float, int]:
        """PostgreSQL's CPU seconds since its last start (the postmaster, its ended children and
        its live ones) and the keyport database's commits so far."""
        ticks = os.sysconf("SC_CLK_TCK")
        postmaster = int((self.postgres.folder / "data" / "postmaster.pid").read_text().split()[0])
        total = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # ended while we looked
            pid, ppid = int(stat.parent.name), int(fields[1])
            if pid == postmaster:
                total += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
            elif ppid == postmaster:
                total += int(fields[11]) + int(fields[12])
        commits = subprocess.run(
            [
                "psql",
                self.postgres.url,
                "-At",
                "-c",
                "SELECT xact_commit FROM pg_stat_database WHERE datname = 'keyport'",
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()
        return total / ticks, int(commits or 0)

    def tracebacks(self) -> dict[str, int]:
        return {h.name: h.log.read_text(errors="replace").count("Traceback") for h in self.hosts}

    def close(self) -> None:
        for host in self.hosts:
            host.stop()
        if self._nginx is not None and self._nginx.poll() is None:
            self._nginx.terminate()
            self._nginx.wait(10)
        self.redis.destroy()
        self.postgres.destroy()
