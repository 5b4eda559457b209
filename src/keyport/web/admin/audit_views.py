"""The audit log in words (the page) and in cells (the CSV export)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import tzinfo

from keyport.domain.audit import AuditAction, AuditEvent
from keyport.domain.keys import ApiKey
from keyport.domain.users import User
from keyport.web.admin.view_models import Moment, actor_words, event_note, moment, person
from keyport.web.admin.words import action_words

_TONES: dict[str, str] = {
    AuditAction.KEY_CREATED: "created",
    AuditAction.USER_CREATED: "created",
    AuditAction.KEY_ACTIVATED: "activated",
    AuditAction.SIGN_IN_SUCCEEDED: "activated",
    AuditAction.KEY_DEACTIVATED: "deactivated",
    AuditAction.KEY_REVOKED: "revoked",
    AuditAction.USER_DELETED: "revoked",
    AuditAction.SIGN_IN_FAILED: "revoked",
    AuditAction.USER_INVITED: "created",
    AuditAction.INVITATION_ACCEPTED: "activated",
    AuditAction.TWO_FACTOR_ENABLED: "activated",
    AuditAction.TWO_FACTOR_DISABLED: "deactivated",
    AuditAction.TWO_FACTOR_RESET: "deactivated",
    AuditAction.SECOND_FACTOR_FAILED: "revoked",
}
CSV_COLUMNS = (
    "time_utc",
    "action",
    "event",
    "actor_type",
    "actor_user_id",
    "actor_email",
    "via_key_id",
    "ip",
    "target_type",
    "target_id",
    "target",
    "details",
)
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, slots=True)
class AuditRow:
    when: Moment
    action: str
    tone: str  # a CSS modifier of .event
    who: str
    who_detail: str | None
    ip: str | None
    target: str | None
    target_href: str | None
    note: str | None


@dataclass(frozen=True, slots=True)
class Names:
    """What the log's ids stand for: the company's live users and its keys."""

    people: Mapping[str, User]
    keys: Mapping[str, ApiKey]

    def target(self, event: AuditEvent) -> tuple[str | None, str | None]:
        """The thing acted on, in words, and the page about it if there is one."""
        if event.target_type == "api_key" and event.target_id:
            key = self.keys.get(event.target_id)
            name = (key.name or "Untitled key") if key else f"Key {event.target_id[:8]}…"
            return name, f"/admin/api-keys/{event.target_id}"
        if event.target_type == "user" and event.target_id:
            return person(self.people.get(event.target_id)), None
        return None, None


def audit_row(event: AuditEvent, zone: tzinfo, names: Names) -> AuditRow:
    who, detail = actor_words(event, names.people)
    target, href = names.target(event)
    return AuditRow(
        when=moment(event.occurred_at, zone),
        action=action_words(event.action),
        tone=_TONES.get(event.action, "other"),
        who=who,
        who_detail=detail,
        ip=event.actor.ip,
        target=target,
        target_href=href,
        note=event_note(event),
    )


def audit_csv(events: Sequence[AuditEvent], names: Names) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for event in events:
        actor = names.people.get(event.actor.user_id or "")
        writer.writerow(
            [
                _cell(value)
                for value in (
                    event.occurred_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                    event.action,
                    action_words(event.action),
                    event.actor.label,
                    event.actor.user_id,
                    actor.email if actor else None,
                    event.actor.key_id,
                    event.actor.ip,
                    event.target_type,
                    event.target_id,
                    names.target(event)[0],
                    json.dumps(event.details, sort_keys=True, ensure_ascii=False),
                )
            ]
        )
    return out.getvalue()


def _cell(value: str | None) -> str:
    """A cell a spreadsheet will not run: text that looks like a formula gets a quote."""
    if value is None:
        return ""
    return "'" + value if value.startswith(_FORMULA_STARTS) else value
