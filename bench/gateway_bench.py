"""Gateway benchmark: `/v1/authorize` against `/v4/user/me`, and nginx in front of a Starlette
hello world with and without Keyport's check (the configuration `keyport proxy-config` prints),
and the same with Caddy.

Run: .venv/bin/python bench/gateway_bench.py [--duration 10] [--connections 64] [--rounds 2]

One Keyport worker (SQLite, rate limits too high to trip), one uvicorn worker for the
upstream, one nginx worker, Caddy (its own threads); free 127.0.0.1 ports only. Every
scenario is checked with one request first (a wrong status means "broken", not a number),
then measured with wrk. Each round ends with its ratios: `/v1/authorize` / `/v4/user/me`, each
proxy with the check / without it, and the latency the check adds at one connection.
Results: bench/README.md ("Gateway").
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import _keyport
from _cpu import CLOCK_TICKS, group_cpu_ticks, ticks_since
from _procs import HOST, Server, free_port, http_status, start_server, stop_server, wait_ready
from _wrk import WrkResult, run_wrk, write_script

BENCH_DIR = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
CADDY = shutil.which("caddy") or "/usr/bin/caddy"
KEYPORT_ENV = {
    "KEYPORT_RATE_LIMIT": "1000000",
    "KEYPORT_RATE_LIMIT_BURST": "1000000",
    "KEYPORT_AUTH_FAILURE_LIMIT": "1000000",
    "KEYPORT_TRUSTED_PROXIES": HOST,
}
PLAIN_NGINX = """daemon off;
worker_processes 1;
pid nginx.pid;
error_log error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log access.log;
    client_body_temp_path client_body_temp;
    proxy_temp_path proxy_temp;
    fastcgi_temp_path fastcgi_temp;
    uwsgi_temp_path uwsgi_temp;
    scgi_temp_path scgi_temp;
    upstream upstream_service {{
        server {upstream};
        keepalive 256;
        keepalive_requests 1000000;
    }}
    server {{
        listen {listen};
        location / {{
            proxy_set_header Connection "";
            proxy_http_version 1.1;
            proxy_pass http://upstream_service;
        }}
    }}
}}
"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2, help="measure each pair this often")
    return parser.parse_args()


def measure(
    url: str,
    headers: dict[str, str],
    script_dir: Path,
    duration: int,
    connections: int,
    servers: list[Server],
) -> tuple[WrkResult, dict[str, float]]:
    """wrk's result, and the CPU each server spent per request (µs) while it ran."""
    status, body = http_status(url, headers)
    if status != 200:
        raise SystemExit(f"{url} answered {status}, not 200: {body[:200]!r}")
    script = write_script(script_dir / f"wrk-{abs(hash((url, connections)))}.lua", headers)
    threads = min(2, connections)
    run_wrk(url, script, 2, connections, threads)  # warm-up
    before = {server.name: group_cpu_ticks(server.process.pid) for server in servers}
    result = run_wrk(url, script, duration, connections, threads)
    requests = max(result.requests_per_sec * duration, 1.0)
    cpu = {
        server.name: ticks_since(before[server.name], group_cpu_ticks(server.process.pid))
        / CLOCK_TICKS
        / requests
        * 1e6
        for server in servers
    }
    cpu["wrk"] = result.wrk_cpu_cores * duration / requests * 1e6
    return result, cpu


PLAIN_CADDY = """{{
\tadmin off
\tauto_https off
}}
http://:{port} {{
\tbind {host}
\treverse_proxy {upstream} {{
\t\ttransport http {{
\t\t\tkeepalive_idle_conns_per_host 256
\t\t}}
\t}}
}}
"""


def start_proxy(workdir: Path, kind: str, name: str, config: str, port: int) -> Server:
    """nginx or Caddy (`kind`) running `config`, with everything it writes under its own
    directory in `workdir`."""
    directory = workdir / name
    directory.mkdir()
    path = directory / "proxy.conf"
    path.write_text(config)
    if kind == "nginx":
        argv = [NGINX, "-p", str(directory), "-c", str(path)]
        env = dict(os.environ)
    else:
        argv = [CADDY, "run", "--adapter", "caddyfile", "--config", str(path)]
        home = str(directory)  # Caddy keeps its state under HOME and the XDG directories
        env = {**os.environ, "HOME": home, "XDG_DATA_HOME": home, "XDG_CONFIG_HOME": home}
    server = start_server(name, argv, env, port, directory / "out.log", directory)
    wait_ready(server, "/", 30)
    return server


def keyport_config(keyport: Server, upstream: Server, port: int, kind: str = "nginx") -> str:
    done = subprocess.run(
        [
            *(str(VENV_BIN / "keyport"), "proxy-config", kind),
            *("--listen", f"{HOST}:{port}", "--keyport", keyport.base_url),
            *("--upstream", upstream.base_url),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def line(name: str, measured: tuple[WrkResult, dict[str, float]]) -> str:
    result, cpu = measured
    spent = ", ".join(f"{who} {micros:.0f}" for who, micros in cpu.items() if micros >= 0.5)
    return (
        f"| {name} | {result.requests_per_sec:,.0f} | {result.p50_ms:.2f} | "
        f"{result.p99_ms:.2f} | {result.non_2xx_3xx} | {spent} |"
    )


def round_ratios(rps: dict[str, float], p50: dict[str, float]) -> dict[str, float]:
    """One round's ratios (req/s over req/s, same round) and the check's added latency."""
    return {
        "/v1/authorize / /v4/user/me (target >= 0.9)": rps["Keyport GET /v1/authorize"]
        / rps["Keyport GET /v4/user/me"],
        "nginx with the check / without (req/s)": rps["nginx → Keyport check → hello"]
        / rps["nginx → hello, no check"],
        "Caddy with the check / without (req/s)": rps["Caddy → Keyport check → hello"]
        / rps["Caddy → hello, no check"],
        "latency the check adds through nginx at c=1, ms (p50)": p50[
            "nginx → Keyport check → hello (c=1)"
        ]
        - p50["nginx → hello, no check (c=1)"],
    }


def main() -> None:
    args = parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="keyport-gateway-bench-"))
    setup = _keyport.set_up(VENV_BIN / "keyport", workdir, KEYPORT_ENV)
    auth = {"Authorization": f"Bearer {setup.key}"}
    env = _keyport.server_env(setup.database_url, KEYPORT_ENV)
    servers: list[Server] = []
    try:
        port = free_port()
        argv = [str(VENV_BIN / "keyport"), "serve", "--host", HOST, "--port", str(port)]
        keyport = start_server("keyport", argv, env, port, workdir / "keyport.log", workdir)
        servers.append(keyport)
        wait_ready(keyport, "/healthz", 60)
        port = free_port()
        uvicorn = [sys.executable, "-m", "uvicorn", "starlette_hello:app", "--app-dir"]
        uvicorn += [str(BENCH_DIR), "--host", HOST, "--port", str(port), "--no-access-log"]
        uvicorn += ["--loop", "uvloop", "--http", "httptools", "--log-level", "warning"]
        upstream = start_server(
            "upstream", uvicorn, dict(os.environ), port, workdir / "up.log", workdir
        )
        servers.append(upstream)
        wait_ready(upstream, "/", 60)
        plain_port, guarded_port = free_port(), free_port()
        plain_text = PLAIN_NGINX.format(
            upstream=f"{HOST}:{upstream.port}", listen=f"{HOST}:{plain_port}"
        )
        plain = start_proxy(workdir, "nginx", "nginx-plain", plain_text, plain_port)
        servers.append(plain)
        guarded = start_proxy(
            workdir,
            "nginx",
            "nginx-keyport",
            keyport_config(keyport, upstream, guarded_port),
            guarded_port,
        )
        servers.append(guarded)
        plain_caddy_port, guarded_caddy_port = free_port(), free_port()
        plain_caddy_text = PLAIN_CADDY.format(
            port=plain_caddy_port, host=HOST, upstream=f"{HOST}:{upstream.port}"
        )
        plain_caddy = start_proxy(
            workdir, "caddy", "caddy-plain", plain_caddy_text, plain_caddy_port
        )
        servers.append(plain_caddy)
        guarded_caddy_text = keyport_config(keyport, upstream, guarded_caddy_port, "caddy")
        guarded_caddy = start_proxy(
            workdir, "caddy", "caddy-keyport", guarded_caddy_text, guarded_caddy_port
        )
        servers.append(guarded_caddy)

        print(
            f"| scenario (c={args.connections} unless said) | req/s | p50 ms | p99 ms | non-2xx "
            "| CPU µs a request |"
        )
        print("|---|---:|---:|---:|---:|---|")
        ratios: dict[str, list[float]] = {}
        for _ in range(args.rounds):
            rps: dict[str, float] = {}
            p50: dict[str, float] = {}
            for name, url in [
                ("Keyport GET /v4/user/me", keyport.base_url + "/v4/user/me"),
                ("Keyport GET /v1/authorize", keyport.base_url + "/v1/authorize"),
                ("nginx → hello, no check", plain.base_url + "/"),
                ("nginx → Keyport check → hello", guarded.base_url + "/"),
                ("Caddy → hello, no check", plain_caddy.base_url + "/"),
                ("Caddy → Keyport check → hello", guarded_caddy.base_url + "/"),
            ]:
                headers = auth if "Keyport" in name else {}
                measured = measure(url, headers, workdir, args.duration, args.connections, servers)
                rps[name] = measured[0].requests_per_sec
                print(line(name, measured), flush=True)
            for name, url, headers in [
                ("nginx → hello, no check (c=1)", plain.base_url + "/", {}),
                ("nginx → Keyport check → hello (c=1)", guarded.base_url + "/", auth),
            ]:
                measured = measure(url, headers, workdir, args.duration, 1, servers)
                p50[name] = measured[0].p50_ms
                print(line(name, measured), flush=True)
            for label, value in round_ratios(rps, p50).items():
                ratios.setdefault(label, []).append(value)
        print()
        for label, values in ratios.items():
            rounds = ", ".join(f"{value:.2f}" for value in values)
            print(f"{label}: median {statistics.median(values):.2f} [{rounds}]")
    finally:
        for server in reversed(servers):
            stop_server(server)


if __name__ == "__main__":
    main()
