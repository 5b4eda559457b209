"""What a key's usage looks like on its page and in the key list, in words and shapes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo

from keyport.domain.anomalies import Alert, AlertKind
from keyport.domain.auth_outcomes import AuthOutcome
from keyport.domain.keys import ApiKey
from keyport.domain.usage import Bucket, RecentRequest, Sighting, status_class
from keyport.services.observability.usage_reports import KeyUsage, SightingSummary
from keyport.web.admin.charts import Chart, stacked_bars
from keyport.web.admin.view_models import Moment, moment

BY_DAY, BY_HOUR = "days", "hours"
_TONES = ("ok", "client", "server")  # by status class
_ALERT_TITLES = {
    AlertKind.NEW_IP: "New IP address",
    AlertKind.NEW_AGENT: "New user agent",
    AlertKind.SPIKE: "Traffic spike",
    AlertKind.FAILURES: "Burst of failures",
}
_REFUSALS: dict[str, str] = {
    AuthOutcome.EXPIRED: "Refused: the key had expired",
    AuthOutcome.DEACTIVATED: "Refused: the key was deactivated",
    AuthOutcome.MISSING_USER_HEADER: "The user header was missing",
    AuthOutcome.INVALID_USER_HEADER: "The user header was not a UUID",
    AuthOutcome.INVALID_USER: "No such user in this company",
}


@dataclass(frozen=True, slots=True)
class AlertView:
    kind: str
    title: str
    subject: str
    detail: str
    when: Moment


@dataclass(frozen=True, slots=True)
class RecentRow:
    when: Moment
    method: str
    path: str
    route: str | None
    status: int
    tone: str  # ok, client or server
    latency: str
    ip: str | None
    agent: str | None
    note: str | None


@dataclass(frozen=True, slots=True)
class SightingRow:
    value: str
    first_seen: Moment
    last_seen: Moment
    requests: int
    is_new: bool


@dataclass(frozen=True, slots=True)
class LastUse:
    when: Moment
    ip: str | None
    agent: str | None


@dataclass(frozen=True, slots=True)
class UsageView:
    by: str  # BY_DAY or BY_HOUR
    chart: Chart
    total: Bucket
    failure_share: str
    last_use: LastUse | None
    alerts: Sequence[AlertView]
    recent: Sequence[RecentRow]
    addresses: Sequence[SightingRow]
    addresses_total: int
    agents: Sequence[SightingRow]
    agents_total: int


def usage_view(usage: KeyUsage, key: ApiKey, zone: tzinfo, by: str) -> UsageView:
    new_ips = {a.subject for a in usage.alerts if a.kind is AlertKind.NEW_IP}
    new_agents = {a.subject for a in usage.alerts if a.kind is AlertKind.NEW_AGENT}
    total = usage.total
    return UsageView(
        by=by,
        chart=_hour_chart(usage.hours, zone) if by == BY_HOUR else _day_chart(usage.days),
        total=total,
        failure_share=f"{total.failures / total.total:.1%}" if total.total else "0%",
        last_use=last_use(usage.last_request, key, zone),
        alerts=[_alert(a, zone) for a in usage.alerts],
        recent=[_recent(r, zone) for r in usage.recent],
        addresses=_sightings(usage.addresses, zone, new_ips),
        addresses_total=usage.addresses.total,
        agents=_sightings(usage.agents, zone, new_agents),
        agents_total=usage.agents.total,
    )


def last_use(newest: RecentRequest | None, key: ApiKey, zone: tzinfo) -> LastUse | None:
    """The newest use known: the recent requests are exact, `last_used_at` is written at most
    once a minute but outlives the ring of recent requests."""
    if newest is not None and (key.last_used_at is None or newest.at >= key.last_used_at):
        return LastUse(moment(newest.at, zone), newest.client_ip, newest.user_agent)
    if key.last_used_at is not None:
        return LastUse(moment(key.last_used_at, zone), key.last_used_ip, None)
    return None


def _day_chart(days: Sequence[Bucket]) -> Chart:
    last = len(days) - 1
    return stacked_bars(
        days,
        describe=lambda d: f"{d.start.day} {d.start:%b %Y}",
        tick_label=lambda i, d: f"{d.start.day} {d.start:%b}" if (last - i) % 2 == 0 else None,
    )


def _hour_chart(hours: Sequence[Bucket], zone: tzinfo) -> Chart:
    def local(bucket: Bucket) -> datetime:
        return bucket.start.astimezone(zone)

    return stacked_bars(
        hours,
        describe=lambda h: f"{local(h).day} {local(h):%b %H:00}",
        tick_label=lambda i, h: f"{local(h).day} {local(h):%b}" if local(h).hour == 0 else None,
    )


def _alert(alert: Alert, zone: tzinfo) -> AlertView:
    return AlertView(
        alert.kind.value,
        _ALERT_TITLES[alert.kind],
        alert.subject,
        alert.detail,
        moment(alert.at, zone),
    )


def _recent(request: RecentRequest, zone: tzinfo) -> RecentRow:
    latency = request.latency_ms
    return RecentRow(
        when=moment(request.at, zone),
        method=request.method,
        path=request.path,
        route=request.route,
        status=request.status,
        tone=_TONES[status_class(request.status)],
        latency=f"{latency:.1f} ms" if latency < 1000 else f"{latency / 1000:.2f} s",
        ip=request.client_ip,
        agent=request.user_agent,
        note=_REFUSALS.get(request.refusal or ""),
    )


def _sightings(summary: SightingSummary, zone: tzinfo, new: set[str]) -> list[SightingRow]:
    return [_sighting(s, zone, s.value in new) for s in summary.latest]


def _sighting(sighting: Sighting, zone: tzinfo, is_new: bool) -> SightingRow:
    return SightingRow(
        sighting.value,
        moment(sighting.first_seen, zone),
        moment(sighting.last_seen, zone),
        sighting.requests,
        is_new,
    )
