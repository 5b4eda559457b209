"""Leak reports: credentials found in public, as GitHub or an own scanner reports them.

A report is a JSON array of `{"token", "type", "url", "source"}`; the answer is the partner
program's feedback, one entry per reported token in the order reported, carrying only the
token's SHA-256 so that a reported token is never echoed. The rules here decide what a report
is and what is said about a finding; finding and revoking the credentials is the service's.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from keyport.domain import personal_tokens
from keyport.domain.errors import PayloadTooLarge, ValidationFailed
from keyport.domain.key_events import iso_utc
from keyport.domain.keys import KEY_PATTERN

MAX_REPORT_BYTES = 1024 * 1024
MAX_REPORT_ENTRIES = 1000
_FIELDS = ("token", "type", "url", "source")


class ReportedBy(StrEnum):
    """Who told us: GitHub's secret scanning, an operator's scanner over the API, or the CLI."""

    GITHUB = "github"
    API = "api"
    SCAN = "scan"

    @property
    def label(self) -> str:
        """As the audit entry names it."""
        return {"github": "GitHub", "api": "API", "scan": "scan"}[self.value]


class Label(StrEnum):
    TRUE_POSITIVE = "true_positive"
    FALSE_POSITIVE = "false_positive"


class LeakAction(StrEnum):
    """KEYPORT_LEAK_ACTION: revoke a leaked live credential (the default), or only mark it."""

    REVOKE = "revoke"
    NOTIFY = "notify"


@dataclass(frozen=True, slots=True)
class ReportedToken:
    """One entry of a report. `repr` leaves the token out: it may be a live secret."""

    token: str
    type: str
    url: str
    source: str

    def __repr__(self) -> str:
        return f"ReportedToken(type={self.type!r}, url={self.url!r}, source={self.source!r})"

    @property
    def token_hash(self) -> str:
        return hashlib.sha256(self.token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Leak:
    """Where and when a credential was found, as stored on it and shown as its `leak`."""

    url: str
    source: str
    reported_by: ReportedBy
    reported_at: datetime

    def as_object(self) -> dict[str, str]:
        return {
            "url": self.url,
            "source": self.source,
            "reportedBy": self.reported_by.value,
            "reportedAt": iso_utc(self.reported_at),
        }

    def audit_detail(self, revoked: bool) -> str:
        """The audit entry's words; the token itself never appears."""
        verb = "revoked" if revoked else "marked leaked"
        return (
            f"{verb}: found in public at {self.url} ({self.source}), "
            f"reported by {self.reported_by.label}"
        )


def parse_report(body: bytes) -> list[ReportedToken]:
    """The report's entries, in order. Over 1 MiB: PayloadTooLarge; anything but an array of
    at most 1,000 objects with four string fields: ValidationFailed (which never quotes a token)."""
    if len(body) > MAX_REPORT_BYTES:
        raise PayloadTooLarge()
    try:
        entries = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ValidationFailed.single("body", "must be a JSON array of reported tokens") from None
    if not isinstance(entries, list):
        raise ValidationFailed.single("body", "must be a JSON array of reported tokens")
    if len(entries) > MAX_REPORT_ENTRIES:
        raise ValidationFailed.single(
            "body", f"must hold at most {MAX_REPORT_ENTRIES} reported tokens"
        )
    return [_entry(index, entry) for index, entry in enumerate(entries)]


def _entry(index: int, entry: Any) -> ReportedToken:
    if not isinstance(entry, dict):
        raise ValidationFailed.single(f"[{index}]", "must be an object")
    values: list[str] = []
    for field in _FIELDS:
        value = entry.get(field)
        if not isinstance(value, str):
            raise ValidationFailed.single(f"[{index}].{field}", "must be a string")
        values.append(value)
    return ReportedToken(*values)


def feedback(entry: ReportedToken, label: Label) -> dict[str, str]:
    """The partner program's feedback for one reported token."""
    return {"token_hash": entry.token_hash, "token_type": entry.type, "label": label.value}


def patterns() -> dict[str, str]:
    """The exact regular expressions of what Keyport issues, for GitHub custom patterns,
    gitleaks or trufflehog. The last six characters are a base62 CRC32 of the rest."""
    return {
        "api_key": KEY_PATTERN.pattern,
        "personal_access_token": personal_tokens.TOKEN_PATTERN.pattern,
    }
