"""Drive wrk: write the Lua script for a scenario, run it, parse what it prints.

The Lua script sets the request headers and, in `done`, prints one machine-readable line
with the exact latency percentiles and error counts; wrk's own text gives requests/sec and
the "Non-2xx or 3xx responses" count.
"""

from __future__ import annotations

import json
import re
import resource
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESULT_MARKER = "BENCH_JSON "

DONE_FUNCTION = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH_JSON {\"requests\": %.0f, \"duration_us\": %.0f, \"bytes\": %.0f, " ..
    "\"p50_us\": %.0f, \"p90_us\": %.0f, \"p99_us\": %.0f, \"max_us\": %.0f, " ..
    "\"mean_us\": %.1f, \"errors\": {\"connect\": %.0f, \"read\": %.0f, \"write\": %.0f, " ..
    "\"status\": %.0f, \"timeout\": %.0f}}\n",
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


class WrkError(RuntimeError):
    """wrk failed, timed out, or printed something we cannot read."""


@dataclass(frozen=True)
class WrkResult:
    requests_per_sec: float
    requests: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    non_2xx_3xx: int
    socket_errors: dict[str, int]
    wrk_cpu_cores: float


def lua_string(value: str) -> str:
    """A Lua string literal for value (escapes everything outside printable ASCII)."""
    escaped = "".join(
        ch if 32 <= ord(ch) < 127 and ch not in '"\\' else f"\\{ord(ch):03d}" for ch in value
    )
    return f'"{escaped}"'


def write_script(path: Path, headers: dict[str, str]) -> Path:
    lines = ['wrk.method = "GET"']
    lines += [f"wrk.headers[{lua_string(k)}] = {lua_string(v)}" for k, v in headers.items()]
    path.write_text("\n".join(lines) + "\n" + DONE_FUNCTION)
    return path


def run_wrk(url: str, script: Path, duration: int, connections: int, threads: int = 2) -> WrkResult:
    argv = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout",
        "5s",
        "-s",
        str(script),
        url,
    ]
    cpu_before = _children_cpu_seconds()
    try:
        completed = subprocess.run(
            argv, capture_output=True, text=True, timeout=duration + 30, check=False
        )
    except subprocess.TimeoutExpired as error:
        raise WrkError(f"wrk did not finish within {duration + 30}s") from error
    wrk_cpu = (_children_cpu_seconds() - cpu_before) / duration
    if completed.returncode != 0:
        raise WrkError(f"wrk exited with {completed.returncode}: {completed.stderr.strip()}")
    return parse_output(completed.stdout, wrk_cpu)


def parse_output(text: str, wrk_cpu_cores: float = 0.0) -> WrkResult:
    summary = _summary_json(text)
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.MULTILINE)
    if rps is None:
        raise WrkError(f"no Requests/sec line in wrk output:\n{text}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    return WrkResult(
        requests_per_sec=float(rps.group(1)),
        requests=int(summary["requests"]),
        p50_ms=summary["p50_us"] / 1000,
        p90_ms=summary["p90_us"] / 1000,
        p99_ms=summary["p99_us"] / 1000,
        max_ms=summary["max_us"] / 1000,
        non_2xx_3xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors={k: int(v) for k, v in summary["errors"].items() if k != "status"},
        wrk_cpu_cores=wrk_cpu_cores,
    )


def _summary_json(text: str) -> dict[str, Any]:
    for line in text.splitlines():
        if line.startswith(RESULT_MARKER):
            loaded: dict[str, Any] = json.loads(line[len(RESULT_MARKER) :])
            return loaded
    raise WrkError(f"the Lua done() line is missing from wrk output:\n{text}")


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
