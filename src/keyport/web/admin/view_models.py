"""What the pages show: keys, dates and audit entries turned into words for people."""

from __future__ import annotations

import math
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

from keyport.domain.audit import AuditAction, AuditEvent
from keyport.domain.keys import ApiKey, KeyState
from keyport.domain.scopes import describe as describe_scopes
from keyport.domain.usage import is_stale
from keyport.domain.users import User
from keyport.web.admin.words import action_words

EXPIRING_SOON = timedelta(days=7)
OPERATOR = "Operator (CLI)"
FORMER_USER = "Former user"


@dataclass(frozen=True, slots=True)
class Moment:
    """A point in time in the viewer's time zone, with its exact UTC form for tooltips."""

    iso: str
    date: str
    date_time: str
    utc: str


def zone_of(user: User) -> tzinfo:
    try:
        return zoneinfo.ZoneInfo(user.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def moment(when: datetime, zone: tzinfo) -> Moment:
    local = when.astimezone(zone)
    date = f"{local.day} {local:%b %Y}"
    return Moment(
        iso=when.isoformat(),
        date=date,
        date_time=f"{date}, {local:%H:%M} {local:%Z}",
        utc=f"{when:%Y-%m-%d %H:%M:%S} UTC",
    )


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def time_left(expires_at: datetime, now: datetime) -> str:
    remaining = expires_at - now
    if remaining <= timedelta(0):
        days_ago = (now - expires_at).days
        return "Expired today" if days_ago == 0 else f"Expired {_plural(days_ago, 'day')} ago"
    if remaining < timedelta(days=1):
        hours = math.ceil(remaining.total_seconds() / 3600)
        return f"{_plural(hours, 'hour')} left"
    return f"{_plural(math.ceil(remaining / timedelta(days=1)), 'day')} left"


def person(user: User | None) -> str:
    return user.full_name or user.email if user is not None else FORMER_USER


def created_by(key: ApiKey, creators: Mapping[str, User]) -> str:
    if key.created_by is None:
        return OPERATOR
    return person(creators.get(key.created_by))


@dataclass(frozen=True, slots=True)
class KeyView:
    id: str
    name: str | None
    hint: str
    state: KeyState
    created: Moment
    created_by: str
    expires: Moment
    time_left: str
    expiring_soon: bool
    last_used: Moment | None
    last_used_ip: str | None
    stale: bool  # active, but not used for 30 days: forgotten, and still a way in
    access: str = "Full access"  # its scopes for people: "Full access" for `*`
    scopes: tuple[str, ...] = ("*",)
    allowed_ips: tuple[str, ...] = ()  # empty: anywhere
    rate_limit: int | None = None  # its own requests a minute; None: the server's default
    # Rotated: the key that replaced it (id, hint); the old one works until `expires`.
    replaced_by_id: str | None = None
    replaced_by_hint: str | None = None

    @property
    def rotated(self) -> bool:
        return self.replaced_by_id is not None

    @property
    def status_class(self) -> str:
        """The badge's CSS modifier: its state, or `rotated` while a rotated key still works."""
        return "rotated" if self.rotated and self._working else self.state.value

    @property
    def status_label(self) -> str:
        return "Rotated" if self.rotated and self._working else self.state.label

    @property
    def _working(self) -> bool:
        return self.state in (KeyState.ACTIVE, KeyState.DEACTIVATED)

    @property
    def can_deactivate(self) -> bool:
        return self.state is KeyState.ACTIVE

    @property
    def can_activate(self) -> bool:
        return self.state is KeyState.DEACTIVATED

    @property
    def can_revoke(self) -> bool:
        return self.state is not KeyState.REVOKED

    @property
    def can_rotate(self) -> bool:
        """Active and deactivated keys not replaced yet; a revoked or expired one is past
        replacing (409), and a rotated one already has its replacement."""
        return self._working and not self.rotated


def key_view(
    key: ApiKey,
    now: datetime,
    zone: tzinfo,
    creators: Mapping[str, User],
    replaced_by: ApiKey | None = None,
) -> KeyView:
    state = key.state(now)
    live = state in (KeyState.ACTIVE, KeyState.DEACTIVATED)
    return KeyView(
        id=key.id,
        name=key.name,
        hint=key.hint,
        state=state,
        created=moment(key.created_at, zone),
        created_by=created_by(key, creators),
        expires=moment(key.expires_at, zone),
        time_left=time_left(key.expires_at, now) if state is not KeyState.REVOKED else "",
        expiring_soon=live and replaced_by is None and key.expires_at - now <= EXPIRING_SOON,
        last_used=moment(key.last_used_at, zone) if key.last_used_at else None,
        last_used_ip=key.last_used_ip,
        stale=state is KeyState.ACTIVE and is_stale(key.last_used_at, key.created_at, now),
        access=describe_scopes(key.scopes),
        scopes=key.scopes,
        allowed_ips=key.allowed_ips,
        rate_limit=key.rate_limit,
        replaced_by_id=replaced_by.id if replaced_by else None,
        replaced_by_hint=replaced_by.hint if replaced_by else None,
    )


_ACTION_WORDS: dict[str, str] = {
    AuditAction.KEY_CREATED: "Created",
    AuditAction.KEY_DEACTIVATED: "Deactivated",
    AuditAction.KEY_ACTIVATED: "Activated",
    AuditAction.KEY_REVOKED: "Revoked",
    AuditAction.KEY_SCOPES_SET: "Scopes changed",
    AuditAction.KEY_ALLOWED_IPS_SET: "Allowed IPs changed",
    AuditAction.KEY_ROTATED: "Rotated",
    AuditAction.KEY_RATE_LIMIT_SET: "Rate limit changed",
    AuditAction.KEY_UPDATED: "Changed",
}


_TONES = frozenset({"created", "activated", "deactivated", "revoked"})  # .event--* styles


@dataclass(frozen=True, slots=True)
class TrailEntry:
    when: Moment
    action: str
    tone: str  # a CSS modifier: created, deactivated, activated, revoked, other
    who: str
    who_detail: str | None
    ip: str | None
    note: str | None


def actor_words(event: AuditEvent, people: Mapping[str, User]) -> tuple[str, str | None]:
    """Who acted, and a detail: their email, or the key they acted through."""
    actor = event.actor
    if actor.label == "cli":
        return OPERATOR, None
    if actor.label == "system":
        return "Keyport", None
    user = people.get(actor.user_id) if actor.user_id else None
    name, email = person(user), user.email if user else None
    if actor.label == "api_key" and actor.key_id:
        return name, f"via API key {actor.key_id[:8]}…"
    return name, email


_TEAM_NOTES: dict[str, Callable[[dict[str, Any]], str]] = {
    AuditAction.USER_ROLE_CHANGED: lambda d: f"{d.get('email')}: {d.get('from')} → {d.get('to')}",
    AuditAction.OWNERSHIP_TRANSFERRED: lambda d: f"Owner {d.get('from')} → {d.get('to')}",
    AuditAction.TWO_FACTOR_REQUIREMENT_SET: lambda d: (
        "Required for owners and admins" if d.get("required") else "Optional"
    ),
    AuditAction.RECOVERY_CODE_USED: lambda d: f"{d.get('left')} recovery codes left",
}
_SIGN_IN_FAILURES = {"wrong password": "Wrong password", "unknown email": "Unknown email"}


def event_note(event: AuditEvent) -> str | None:
    """The details of an event that a person wants to read, in words."""
    details: dict[str, Any] = event.details
    if event.action == AuditAction.KEY_CREATED and "expiresInDays" in details:
        return f"Valid for {_plural(int(details['expiresInDays']), 'day')}"
    if event.action in _TEAM_NOTES:
        return _TEAM_NOTES[event.action](details)
    if "from" in details and "to" in details:
        return f"Status {details['from']} → {details['to']}"
    if event.action == AuditAction.SIGN_IN_FAILED and "reason" in details:
        return _SIGN_IN_FAILURES.get(str(details["reason"]), str(details["reason"]))
    if "fields" in details:
        return "Changed " + ", ".join(str(f) for f in details["fields"])
    if "email" in details and "role" in details:
        return f"{details['email']} as {details['role']}"
    return None


def trail_entry(event: AuditEvent, zone: tzinfo, people: Mapping[str, User]) -> TrailEntry:
    who, detail = actor_words(event, people)
    action = _ACTION_WORDS.get(event.action) or action_words(event.action)
    tone = action.lower() if action.lower() in _TONES else "other"
    return TrailEntry(
        moment(event.occurred_at, zone),
        action,
        tone,
        who,
        detail,
        event.actor.ip,
        event_note(event),
    )
