"""Report: the machine, the results table, the issue's targets, and the JSON record."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import subprocess
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from _model import (
    HEALTHZ,
    INVALID_KEY_SCENARIOS,
    ME,
    STARLETTE_HELLO,
    Outcome,
    RunLog,
)

PACKAGES = ("uvicorn", "uvloop", "httptools", "starlette", "litestar", "keyport")


@dataclass(frozen=True)
class TargetCheck:
    description: str
    ratio: float | None
    target: float
    disturbed: bool = False  # an input run was "suspect": other load on the machine

    @property
    def verdict(self) -> str:
        if self.ratio is None:
            return "not measured"
        verdict = "PASS" if self.ratio >= self.target else "FAIL"
        return f"{verdict}?" if self.disturbed else verdict


def machine_description() -> dict[str, str]:
    return {
        "cpu": _cpu_model(),
        "cores": str(os.cpu_count()),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "wrk": _wrk_version(),
        "kernel": platform.release(),
        "packages": ", ".join(f"{name} {_version(name)}" for name in PACKAGES),
    }


def print_machine(machine: dict[str, str]) -> None:
    for key, value in machine.items():
        print(f"{key:>8}: {value}")
    print()


def print_table(log: RunLog) -> None:
    headers = [
        "scenario",
        "workers",
        "req/s",
        "p50 ms",
        "p99 ms",
        "non-2xx/3xx",
        "x starlette",
        "x healthz",
        "server cores",
        "req/s/core",
        "wrk cores",
        "other",
        "steal",
        "state",
    ]
    rows = [headers] + [_row(outcome, log) for outcome in log.outcomes]
    widths = [max(len(row[i]) for row in rows) for i in range(len(headers))]
    for index, row in enumerate(rows):
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print("  ".join(cells).rstrip())
        if index == 0:
            print("  ".join("-" * width for width in widths))
    notes = [o for o in log.outcomes if o.note]
    if notes:
        print()
    for outcome in notes:
        print(f"- {outcome.scenario} ({outcome.workers}w), {outcome.state}: {outcome.note}")
    for stop in log.server_stops:
        print(f"- stop: {stop}")
    if log.source_changed:
        print(f"- WARNING: src/ changed between server starts {log.source_fingerprints}")


def target_checks(log: RunLog) -> list[TargetCheck]:
    worker_counts = sorted({o.workers for o in log.outcomes if o.scenario == ME})
    checks = [_check(log, (ME, 1), (STARLETTE_HELLO, 1), 0.50)]
    for workers in worker_counts:
        checks.append(_check(log, (ME, workers), (HEALTHZ, workers), 0.85))
        checks += [_check(log, (bad, workers), (ME, workers), 1.0) for bad in INVALID_KEY_SCENARIOS]
    if 1 in worker_counts and 2 in worker_counts:
        scenarios = [o.scenario for o in log.outcomes if o.workers == 1 and o.server == "keyport"]
        checks += [_check(log, (name, 2), (name, 1), 1.6) for name in scenarios]
    return checks


def print_targets(checks: list[TargetCheck]) -> None:
    print("\nTargets from the Performance issue (PASS?/FAIL? = from a disturbed run):")
    for check in checks:
        ratio = "-" if check.ratio is None else f"{check.ratio:.2f}"
        print(f"  {check.verdict:<12} {check.description}: {ratio} (target >= {check.target})")


def write_json(path: Path, log: RunLog, machine: dict[str, str], settings: dict[str, Any]) -> None:
    record = {
        "timestamp": datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine,
        "settings": settings,
        "interrupted": log.interrupted,
        "outcomes": [_outcome_json(outcome, log) for outcome in log.outcomes],
        "server_stops": log.server_stops,
        "source_fingerprints": log.source_fingerprints,
        "source_changed": log.source_changed,
        "targets": [
            {**dataclasses.asdict(check), "verdict": check.verdict} for check in target_checks(log)
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")


def _find_rps(log: RunLog, scenario: str, workers: int) -> float | None:
    for outcome in log.outcomes:
        if outcome.scenario == scenario and outcome.workers == workers and outcome.measured:
            assert outcome.wrk is not None
            return outcome.wrk.requests_per_sec
    return None


def _ratio(log: RunLog, subject: tuple[str, int], base: tuple[str, int]) -> float | None:
    subject_rps, base_rps = _find_rps(log, *subject), _find_rps(log, *base)
    if subject_rps is None or not base_rps:
        return None
    return subject_rps / base_rps


def _check(
    log: RunLog, subject: tuple[str, int], base: tuple[str, int], target: float
) -> TargetCheck:
    description = f"{subject[0]} ({subject[1]}w) / {base[0]} ({base[1]}w)"
    disturbed = any(
        o.state == "suspect" and (o.scenario, o.workers) in (subject, base) for o in log.outcomes
    )
    return TargetCheck(description, _ratio(log, subject, base), target, disturbed)


def _row(outcome: Outcome, log: RunLog) -> list[str]:
    key = (outcome.scenario, outcome.workers)
    vs_starlette = _ratio(log, key, (STARLETTE_HELLO, 1))
    vs_healthz = _ratio(log, key, (HEALTHZ, outcome.workers))
    result = outcome.wrk
    return [
        outcome.scenario,
        str(outcome.workers),
        f"{result.requests_per_sec:,.0f}" if result else "-",
        f"{result.p50_ms:.2f}" if result else "-",
        f"{result.p99_ms:.2f}" if result else "-",
        str(result.non_2xx_3xx) if result else "-",
        f"{vs_starlette:.2f}" if vs_starlette is not None else "-",
        f"{vs_healthz:.2f}" if vs_healthz is not None and outcome.server == "keyport" else "-",
        _cores(outcome),
        f"{per_core:,.0f}" if (per_core := _per_core(outcome)) is not None else "-",
        f"{result.wrk_cpu_cores:.2f}" if result else "-",
        f"{outcome.other_cores:.2f}" if result and outcome.other_cores is not None else "-",
        f"{outcome.cpu.steal_cores:.2f}" if result and outcome.cpu else "-",
        outcome.state,
    ]


def _cores(outcome: Outcome) -> str:
    if outcome.cpu is None:
        return "-"
    return "+".join(f"{cores:.2f}" for cores in outcome.cpu.server_cores) or "0"


def _per_core(outcome: Outcome) -> float | None:
    """req/s per core the server used: a cost per request that other load distorts less."""
    if outcome.wrk is None or outcome.cpu is None:
        return None
    cores = sum(outcome.cpu.server_cores)
    return outcome.wrk.requests_per_sec / cores if cores > 0 else None


def _outcome_json(outcome: Outcome, log: RunLog) -> dict[str, Any]:
    data = dataclasses.asdict(outcome)
    key = (outcome.scenario, outcome.workers)
    data["ratio_vs_starlette"] = _ratio(log, key, (STARLETTE_HELLO, 1))
    data["ratio_vs_healthz"] = _ratio(log, key, (HEALTHZ, outcome.workers))
    data["other_cores"] = outcome.other_cores
    data["requests_per_server_core"] = _per_core(outcome)
    return data


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _wrk_version() -> str:
    try:
        done = subprocess.run(
            ["wrk", "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    lines = (done.stdout + done.stderr).strip().splitlines()
    return lines[0].strip() if lines else "unknown"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"
