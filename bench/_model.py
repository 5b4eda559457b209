"""What the benchmark runs (servers and scenarios) and what one run produced."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from _cpu import CpuUsage
from _wrk import WrkResult


@dataclass(frozen=True)
class Scenario:
    name: str
    path: str
    expect_status: int
    headers: dict[str, str] = field(default_factory=dict)
    skip_reason: str | None = None


@dataclass(frozen=True)
class ServerPlan:
    """One server to start (argv holds "{port}" where the port goes) and what to send it."""

    label: str
    workers: int
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    ready_path: str
    scenarios: list[Scenario]

    def argv_for(self, port: int) -> list[str]:
        return [arg.replace("{port}", str(port)) for arg in self.argv]


@dataclass
class Outcome:
    """One scenario on one server. state: ok; suspect (measured, but the machine was busy:
    see note); invalid (wrong responses, e.g. 429: the number is not about this scenario);
    broken (nothing measured); skipped."""

    server: str
    scenario: str
    workers: int
    expect_status: int
    state: str
    note: str = ""
    wrk: WrkResult | None = None
    cpu: CpuUsage | None = None

    @property
    def measured(self) -> bool:
        return self.wrk is not None and self.state in ("ok", "suspect")

    @property
    def other_cores(self) -> float | None:
        """CPU the machine spent on neither this server nor wrk during the run."""
        if self.wrk is None or self.cpu is None:
            return None
        own = sum(self.cpu.server_cores) + self.wrk.wrk_cpu_cores
        return max(self.cpu.machine_busy_cores - own, 0.0)


@dataclass
class RunLog:
    outcomes: list[Outcome] = field(default_factory=list)
    server_stops: list[str] = field(default_factory=list)
    source_fingerprints: dict[str, str] = field(default_factory=dict)
    interrupted: bool = False

    @property
    def source_changed(self) -> bool:
        """src/ was edited between server starts: the servers ran different code."""
        return len(set(self.source_fingerprints.values())) > 1


STARLETTE_HELLO = "starlette GET /"
HEALTHZ = "keyport GET /healthz"
ME = "keyport GET /v4/user/me"
ME_AS_USER = "keyport GET /v4/user/me + user-id header"
ME_WRONG_SECRET = "keyport GET /v4/user/me wrong secret"
ME_BAD_CHECKSUM = "keyport GET /v4/user/me bad checksum"
INVALID_KEY_SCENARIOS = (ME_WRONG_SECRET, ME_BAD_CHECKSUM)
