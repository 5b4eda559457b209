"""CPU accounting from /proc: how much each server process and the whole machine used.

On a 2-core machine wrk, the server and anything else running (tests, a VM neighbour's
steal) compete for the same cores, so every number is reported with where the CPU went.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MIN_REPORTED_CORES = 0.02


@dataclass(frozen=True)
class CpuSample:
    at: float
    group_ticks: dict[int, int]
    busy_ticks: int
    steal_ticks: int


@dataclass(frozen=True)
class CpuUsage:
    server_cores: list[float]
    machine_busy_cores: float
    steal_cores: float


def _process_stats() -> Iterator[tuple[int, str, list[str]]]:
    """(pid, name, the /proc/PID/stat fields after the name) of every live process; the
    fields start at stat field 3 (state): pgrp is [2], utime [11], stime [12]."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        name, _, rest = stat.partition(" (")[2].rpartition(")")
        yield int(entry.name), name, rest.split()


def group_cpu_ticks(pgid: int) -> dict[int, int]:
    """CPU ticks (user + system) of every live process in the process group, by pid."""
    return {
        pid: int(fields[11]) + int(fields[12])
        for pid, _, fields in _process_stats()
        if int(fields[2]) == pgid
    }


def command_cpu_ticks(command: str) -> dict[int, int]:
    """CPU ticks (user + system) of every live process whose name is `command` (for example
    "postgres": the database's backends, which the server's own group does not include)."""
    return {
        pid: int(fields[11]) + int(fields[12])
        for pid, name, fields in _process_stats()
        if name == command
    }


def ticks_since(before: dict[int, int], after: dict[int, int]) -> int:
    """CPU ticks spent between two readings by pid (a process started since counts whole)."""
    return sum(t - before.get(pid, 0) for pid, t in after.items())


def sample(pgid: int) -> CpuSample:
    busy, steal = _machine_ticks()
    return CpuSample(time.monotonic(), group_cpu_ticks(pgid), busy, steal)


def usage_between(before: CpuSample, after: CpuSample) -> CpuUsage:
    seconds = max(after.at - before.at, 1e-9)
    per_process = [
        (ticks - before.group_ticks.get(pid, 0)) / CLOCK_TICKS / seconds
        for pid, ticks in after.group_ticks.items()
    ]
    return CpuUsage(
        server_cores=sorted((c for c in per_process if c >= MIN_REPORTED_CORES), reverse=True),
        machine_busy_cores=(after.busy_ticks - before.busy_ticks) / CLOCK_TICKS / seconds,
        steal_cores=(after.steal_ticks - before.steal_ticks) / CLOCK_TICKS / seconds,
    )


def wait_machine_quiet(timeout: float, threshold_cores: float, window: float = 1.0) -> float:
    """Wait (at most timeout seconds) until the whole machine is nearly idle for one window;
    return the busy cores of the last window so the caller can say if it never got quiet."""
    deadline = time.monotonic() + timeout
    while True:
        busy_before, _ = _machine_ticks()
        time.sleep(window)
        busy = (_machine_ticks()[0] - busy_before) / CLOCK_TICKS / window
        if busy < threshold_cores or time.monotonic() >= deadline:
            return busy


def _machine_ticks() -> tuple[int, int]:
    """(busy, steal) ticks summed over all CPUs since boot, from the first line of /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return user + nice + system + irq + softirq, steal
