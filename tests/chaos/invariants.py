"""The promises a cluster run checks, each a counter of violations that must end at zero
(docs/operations.md, "Tested guarantees", says the same in prose):

- refused_key_admitted: a key is refused by every host for requests sent more than 1 s after
  its deactivation, revocation or rotation returned; when PostgreSQL went down within that
  second, the cache TTL bounds it instead (the documented rule while the database is away).
- rate_limit_exceeded: a limited key's admitted requests stay within burst + rate * T, plus
  one burst per host for each Redis outage and one for each Redis restart (buckets start full).
- server_errors: no answer is a 500 (503 is the documented answer of an outage).
- tracebacks: no host logs a traceback; expected outages are one line each.
- lost_changes: a change answered 2xx is there afterwards.
- events_missing, events_duplicated: every acknowledged change's event reaches the receiver,
  never under two different webhook-ids.
- audit_missing: every acknowledged change has its audit entry.
- sign_in_guesses_exceeded: wrong passwords checked for one (account, address) stay within the
  sign-in limit, counted from each Redis start (a Redis without persistence forgets them).
- unavailable: outside fault windows, at most 0.1 % of requests get no answer within 5 s or a
  5xx other than 503.
"""

from __future__ import annotations

import json
import subprocess
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from tests.chaos.faults import Injector
from tests.chaos.workload import Change, Workload
from tests.support.receiver import Received

PROPAGATION = 1.0  # seconds: the promise for every process
EVENT_OF = {
    "create": "api_key.created",
    "deactivate": "api_key.deactivated",
    "revoke": "api_key.revoked",
    "rotate": "api_key.rotated",
    "revoke-token": "personal_access_token.revoked",
}
AUDIT_OF = EVENT_OF


@dataclass
class Report:
    seed: int
    seconds: float
    requests: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    changes: int = 0
    events: int = 0
    faults: list[str] = field(default_factory=list)
    violations: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    availability: float = 1.0
    outside_windows: int = 0
    steady: str = ""  # what PostgreSQL did while no fault was in effect

    @property
    def clean(self) -> bool:
        return not any(self.violations.values())

    def violate(self, counter: str, example: str) -> None:
        self.violations[counter] = self.violations.get(counter, 0) + 1
        shown = self.examples.setdefault(counter, [])
        if len(shown) < 5:
            shown.append(example)

    def text(self) -> str:
        lines = [
            f"seed {self.seed}, {self.seconds:.0f} s of traffic, {self.requests} requests "
            f"({', '.join(f'{s}: {n}' for s, n in sorted(self.by_status.items()))}), "
            f"{self.changes} acknowledged changes, {self.events} webhook deliveries",
            f"availability outside fault windows: {self.availability:.4%} "
            f"of {self.outside_windows} requests",
            *([f"steady state after the faults: {self.steady}"] if self.steady else []),
            "faults:",
            *(f"  {f}" for f in self.faults),
            "violations:",
            *(f"  {name}: {count}" for name, count in self.violations.items()),
        ]
        for name, shown in self.examples.items():
            lines += [f"  e.g. {name}: {example}" for example in shown]
        return "\n".join(lines)


def _during(moment: float, spans: list[tuple[float, float]], slack: float = 0.0) -> bool:
    return any(start <= moment <= end + slack for start, end in spans)


def check_refusals(report: Report, work: Workload, faults: Injector, cache_ttl: float) -> None:
    postgres_down = faults.down("postgres-stop")
    refused = {k.id: k.refused_since for k in work.churn if k.refused_since is not None}
    for exchange in work.exchanges:
        if exchange.label != "churn" or exchange.status != 200:
            continue
        since = refused.get(exchange.key_id or "")
        if since is None:
            continue
        bound = PROPAGATION
        if _during(since, postgres_down, slack=PROPAGATION) or any(
            start <= since + PROPAGATION and since <= end for start, end in postgres_down
        ):
            bound = cache_ttl + PROPAGATION  # the documented rule while the database is away
        late = exchange.started - since
        if late > bound:
            report.violate(
                "refused_key_admitted",
                f"key {exchange.key_id} admitted {late:.2f}s after its refusal returned",
            )
    report.violations.setdefault("refused_key_admitted", 0)


def check_rate_limit(
    report: Report, work: Workload, faults: Injector, rate: int, burst: int, hosts: int
) -> None:
    limited = [e for e in work.exchanges if e.label == "limited"]
    if not limited:
        return
    admitted = sum(1 for e in limited if e.status == 200)
    seconds = max(e.ended for e in limited) - work.started
    redis_faults = len(faults.down("redis-restart"))
    # With Redis: bucket start + refill; each outage lets every host limit on its own (one
    # burst each) and the restarted Redis starts the bucket full again (one more). Near the
    # limit a lease is one token per host.
    allowed = burst + rate * seconds / 60 + hosts + redis_faults * burst * (hosts + 1)
    if admitted > allowed:
        report.violate(
            "rate_limit_exceeded", f"{admitted} admitted where at most {allowed:.1f} may pass"
        )
    report.violations.setdefault("rate_limit_exceeded", 0)


def check_answers(report: Report, work: Workload, faults: Injector) -> None:
    outside = unavailable = 0
    for exchange in work.exchanges:
        report.by_status[exchange.status] = report.by_status.get(exchange.status, 0) + 1
        if exchange.status == 500:
            report.violate("server_errors", f"{exchange.label} answered 500")
        if faults.in_window(exchange.started) or faults.in_window(exchange.ended):
            continue
        outside += 1
        late = exchange.ended - exchange.started > 5.0
        if exchange.status == 0 or late or (exchange.status >= 500 and exchange.status != 503):
            unavailable += 1
            if unavailable <= 5:
                report.examples.setdefault("unavailable", []).append(
                    f"{exchange.label} status {exchange.status} after "
                    f"{exchange.ended - exchange.started:.2f}s"
                )
    report.requests = len(work.exchanges)
    report.outside_windows = outside
    report.availability = 1 - unavailable / outside if outside else 1.0
    report.violations.setdefault("server_errors", 0)
    report.violations["unavailable"] = int(report.availability < 0.999)


def check_sign_ins(report: Report, work: Workload, faults: Injector, limit: int) -> None:
    """Wrong passwords that were checked (400, not 429 or 503), counted per Redis start."""
    restarts = sorted(start for start, _ in faults.down("redis-restart"))
    checked: dict[int, int] = defaultdict(int)
    for exchange in work.exchanges:
        if exchange.label == "attack" and exchange.status == 400:
            epoch = sum(1 for start in restarts if start <= exchange.started)
            checked[epoch] += 1
    for epoch, count in checked.items():
        if count > limit:
            report.violate(
                "sign_in_guesses_exceeded",
                f"{count} wrong passwords checked after Redis start {epoch} (limit {limit})",
            )
    report.violations.setdefault("sign_in_guesses_exceeded", 0)


def check_tracebacks(report: Report, tracebacks: dict[str, int]) -> None:
    for host, count in tracebacks.items():
        for _ in range(count):
            report.violate("tracebacks", f"{host} logged a traceback")
    report.violations.setdefault("tracebacks", 0)


STATE_AFTER = {
    "deactivate": "deactivated",
    "revoke": "revoked",
    "rotate": "expired",
    "revoke-token": "revoked",
}


def check_changes(
    report: Report,
    changes: list[Change],
    unacknowledged: list[Change],
    final: dict[str, dict[str, Any]],
) -> None:
    """`final`: each key's object as `/v1/keys/{id}` answers after the run. A change that got
    no 2xx may have been applied all the same: the state it leaves is accepted too."""
    maybe: dict[str, set[str]] = defaultdict(set)
    for attempt in unacknowledged:
        maybe[attempt.key_id].add(STATE_AFTER[attempt.verb])
    report.changes = len(changes)
    expected: dict[str, str] = {}
    for change in changes:
        if change.verb == "create":
            expected.setdefault(change.key_id, "active")
        elif change.verb == "deactivate":
            expected[change.key_id] = "deactivated"
        elif change.verb in ("revoke", "revoke-token"):
            expected[change.key_id] = "revoked"
        elif change.verb == "rotate":
            expected[change.key_id] = "expired"  # grace 0: the old key expires at once
            if change.new_key_id:
                expected.setdefault(change.new_key_id, "active")
    for key_id, status in expected.items():
        found = final.get(key_id)
        if found is not None and found.get("status") in maybe[key_id]:
            continue
        if found is None or found.get("status") != status:
            got = None if found is None else found.get("status")
            report.violate("lost_changes", f"key {key_id}: expected {status}, found {got}")
    report.violations.setdefault("lost_changes", 0)


def _webhook_ids(received: list[Received]) -> dict[tuple[str, str], set[str]]:
    """Each (event type, subject id) delivered, with the webhook-ids it came under."""
    ids: dict[tuple[str, str], set[str]] = defaultdict(set)
    for delivery in received:
        body = json.loads(delivery.body)
        ids[(body["type"], body["data"]["id"])].add(delivery.headers.get("webhook-id", ""))
    return ids


def check_events(report: Report, changes: list[Change], received: list[Received]) -> list[str]:
    """Returns the expected events still missing (the caller may wait and ask again)."""
    ids = _webhook_ids(received)
    report.events = len(received)
    missing = []
    for change in changes:
        subject = change.new_key_id if change.verb == "rotate" else change.key_id
        if (EVENT_OF[change.verb], subject) not in ids:
            missing.append(f"{EVENT_OF[change.verb]} of {subject}")
    return missing


def finish_events(
    report: Report, changes: list[Change], received: list[Received], missing: list[str]
) -> None:
    ids = _webhook_ids(received)
    for event in missing:
        report.violate("events_missing", event)
    for (kind, subject), webhook_ids in ids.items():
        if len(webhook_ids) > 1:
            report.violate("events_duplicated", f"{kind} of {subject}: {len(webhook_ids)} ids")
    report.violations.setdefault("events_missing", 0)
    report.violations.setdefault("events_duplicated", 0)


def check_audit(report: Report, changes: list[Change], postgres_url: str) -> None:
    rows = subprocess.run(
        ["psql", postgres_url, "-At", "-c", "SELECT action || ' ' || target_id FROM audit_events"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.split()
    entries = set(zip(rows[::2], rows[1::2], strict=False))
    for change in changes:
        targets = {change.key_id, change.new_key_id}
        if not any((AUDIT_OF[change.verb], t) in entries for t in targets if t):
            report.violate("audit_missing", f"{AUDIT_OF[change.verb]} of {change.key_id}")
    report.violations.setdefault("audit_missing", 0)
