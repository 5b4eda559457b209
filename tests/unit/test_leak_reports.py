"""Leak reports: what a report is, the feedback it gets, and what is said about a finding."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from datetime import UTC, datetime

import pytest

from keyport.domain import leaks
from keyport.domain.errors import PayloadTooLarge, ValidationFailed
from keyport.domain.keys import generate_key
from keyport.domain.personal_tokens import generate_token

URL = "https://github.com/acme/app/blob/main/.env"


def _entry(token: str, source: str = "content") -> dict[str, str]:
    return {"token": token, "type": "keyport_api_key", "url": URL, "source": source}


def test_a_report_is_read_in_order_and_its_feedback_carries_only_the_tokens_sha256() -> None:
    key, token = generate_key(uuid.uuid4()), generate_token()
    entries = leaks.parse_report(json.dumps([_entry(key), _entry(token, "npm")]).encode())
    assert [entry.token for entry in entries] == [key, token]
    answer = leaks.feedback(entries[0], leaks.Label.TRUE_POSITIVE)
    assert answer == {
        "token_hash": hashlib.sha256(key.encode()).hexdigest(),
        "token_type": "keyport_api_key",
        "label": "true_positive",
    }
    assert key not in repr(entries[0])


@pytest.mark.parametrize(
    "body",
    [b"{}", b"not json", b"\xff", b'"x"', b"[1]", b'[{"token": "x"}]', b'[{"token": 1}]'],
    ids=["object", "text", "bytes", "string", "number", "fields", "types"],
)
def test_anything_but_an_array_of_reported_tokens_is_validation_failed(body: bytes) -> None:
    with pytest.raises(ValidationFailed) as refused:
        leaks.parse_report(body)
    assert refused.value.message == "Validation failed"


def test_at_most_a_thousand_entries_and_one_mebibyte() -> None:
    entry = _entry(generate_key(uuid.uuid4()))
    assert len(leaks.parse_report(json.dumps([entry] * 1000).encode())) == 1000
    with pytest.raises(ValidationFailed):
        leaks.parse_report(json.dumps([entry] * 1001).encode())
    with pytest.raises(PayloadTooLarge):
        leaks.parse_report(b"[" + b" " * leaks.MAX_REPORT_BYTES + b"]")


def test_a_refused_entry_never_quotes_its_token() -> None:
    key = generate_key(uuid.uuid4())
    with pytest.raises(ValidationFailed) as refused:
        leaks.parse_report(json.dumps([{"token": key, "type": "t", "url": 3}]).encode())
    assert key not in str(refused.value)


def test_the_leak_object_and_audit_words() -> None:
    leak = leaks.Leak(
        URL, "content", leaks.ReportedBy.GITHUB, datetime(2026, 12, 8, 3, 0, tzinfo=UTC)
    )
    assert leak.as_object() == {
        "url": URL,
        "source": "content",
        "reportedBy": "github",
        "reportedAt": "2026-12-08T03:00:00.000Z",
    }
    assert leak.audit_detail(revoked=True) == (
        f"revoked: found in public at {URL} (content), reported by GitHub"
    )
    api = leaks.Leak(URL, "gitleaks", leaks.ReportedBy.API, leak.reported_at)
    assert api.audit_detail(revoked=True).endswith("(gitleaks), reported by API")


def test_the_printed_patterns_match_what_keyport_issues() -> None:
    found = leaks.patterns()
    assert re.fullmatch(found["api_key"], generate_key(uuid.uuid4()))
    assert re.fullmatch(found["personal_access_token"], generate_token())


def test_keyport_leaks_pattern_prints_each_expression_on_its_own_line() -> None:
    from click.testing import CliRunner

    from keyport.cli import cli

    shown = CliRunner().invoke(cli, ["leaks", "pattern"])
    assert shown.exit_code == 0, shown.output
    assert shown.output == (
        f"api_key: {leaks.patterns()['api_key']}\n"
        f"personal_access_token: {leaks.patterns()['personal_access_token']}\n"
    )
