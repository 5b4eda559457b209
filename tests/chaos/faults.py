"""Faults injected into the cluster on a seeded schedule, one at a time, each recorded with
when it was injected and when it was undone (the invariants read those windows).

Kinds: `kill` (kill -9 a host, then start it again), `pause` (SIGSTOP a host for 5 s),
`redis-restart` (Redis crashes and comes back empty), `postgres-stop` (PostgreSQL down for
10 s) and `drop-channel` (every Redis pub/sub connection cut, again and again, so that
evictions arrive only through the database log).
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass

from tests.chaos.cluster import Cluster

KINDS = ("kill", "pause", "redis-restart", "postgres-stop", "drop-channel")
PAUSE_SECONDS = 5.0
POSTGRES_DOWN_SECONDS = 10.0
AFTERMATH = 5.0  # a fault's window lasts this long after it was undone


@dataclass(frozen=True)
class Fault:
    kind: str
    at: float  # seconds after the traffic started
    host: int  # which host, for kill and pause
    seconds: float  # how long it lasts before it is undone (kill: before the restart)

    def describe(self) -> str:
        target = f" host{self.host + 1}" if self.kind in {"kill", "pause"} else ""
        return f"{self.at:6.1f}s {self.kind}{target} for {self.seconds:.1f}s"


@dataclass
class Window:
    fault: Fault
    injected: float  # time.monotonic()
    undone: float | None = None

    def covers(self, moment: float, *, aftermath: float = AFTERMATH) -> bool:
        end = (self.undone if self.undone is not None else float("inf")) + aftermath
        return self.injected <= moment <= end


def short_schedule(seed: int) -> list[Fault]:
    """Every kind once in about 45 s, for the run in every test run."""
    rng = random.Random(seed)
    return [
        Fault("kill", 4.0, rng.randrange(3), 1.0),
        Fault("pause", 11.0, rng.randrange(3), PAUSE_SECONDS),
        Fault("redis-restart", 19.0, 0, 0.5),
        Fault("drop-channel", 25.0, 0, 6.0),
        Fault("postgres-stop", 34.0, 0, POSTGRES_DOWN_SECONDS),
    ]


def random_schedule(seed: int, seconds: float) -> list[Fault]:
    """Faults of every kind at random for `seconds`: each kind at least once, in seeded order,
    then random kinds, 3 to 12 s apart (the injector never overlaps two)."""
    rng = random.Random(seed)
    kinds = list(KINDS)
    rng.shuffle(kinds)
    faults, at = [], 5.0
    while at < seconds - 25:
        kind = kinds.pop() if kinds else rng.choice(KINDS)
        lasting = {
            "kill": rng.uniform(0.5, 5.0),
            "pause": PAUSE_SECONDS,
            "redis-restart": rng.uniform(0.2, 3.0),
            "postgres-stop": POSTGRES_DOWN_SECONDS,
            "drop-channel": rng.uniform(5.0, 15.0),
        }[kind]
        faults.append(Fault(kind, at, rng.randrange(3), lasting))
        at += lasting + rng.uniform(3.0, 12.0) + 3.0  # + a restart's own time
    return faults


class Injector:
    """Runs a schedule in a thread; `windows` holds what happened, as it happened."""

    def __init__(self, cluster: Cluster, schedule: list[Fault], log: list[str]) -> None:
        self.cluster = cluster
        self.schedule = schedule
        self.windows: list[Window] = []
        self._log = log
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.error: BaseException | None = None

    def start(self, started: float) -> None:
        self._started = started
        self._thread.start()

    def _run(self) -> None:
        try:
            for fault in self.schedule:
                wait = self._started + fault.at - time.monotonic()
                if self._stop.wait(max(0.0, wait)):
                    return
                self._inject(fault)
        except BaseException as error:  # reported by the run, never swallowed
            self.error = error

    def _inject(self, fault: Fault) -> None:
        cluster, host = self.cluster, self.cluster.hosts[fault.host]
        window = Window(fault, time.monotonic())
        self.windows.append(window)
        self._log.append(f"inject {fault.describe()}")
        if fault.kind == "kill":
            host.kill()
            time.sleep(fault.seconds)  # the host stays dead this long (the schedule's doing)
            cluster.restart_host(host)
        elif fault.kind == "pause":
            host.pause()
            time.sleep(fault.seconds)
            host.resume()
        elif fault.kind == "redis-restart":
            cluster.redis.stop()
            time.sleep(fault.seconds)
            cluster.redis.start()
        elif fault.kind == "postgres-stop":
            cluster.postgres.stop("fast")
            time.sleep(fault.seconds)
            cluster.postgres.start()
        elif fault.kind == "drop-channel":
            until = time.monotonic() + fault.seconds
            while time.monotonic() < until:
                cluster.drop_invalidation_channel()
                time.sleep(0.1)
        window.undone = time.monotonic()
        self._log.append(f"undone {fault.kind} after {window.undone - window.injected:.1f}s")

    def wait(self, at_least_until: float) -> None:
        """Returns when every fault has been undone, and `AFTERMATH` seconds have passed since
        the last one, but not before `at_least_until` (time.monotonic())."""
        self._thread.join()
        last = max((w.undone or 0.0 for w in self.windows), default=0.0)
        time.sleep(max(0.0, max(at_least_until, last + AFTERMATH) - time.monotonic()))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(120)

    def down(self, kind: str) -> list[tuple[float, float]]:
        """When faults of `kind` were in effect (undone: its end, else now)."""
        now = time.monotonic()
        return [
            (w.injected, w.undone if w.undone is not None else now)
            for w in self.windows
            if w.fault.kind == kind
        ]

    def in_window(self, moment: float) -> bool:
        return any(w.covers(moment) for w in self.windows)
