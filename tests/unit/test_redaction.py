"""Issue 9, item 7: a key pasted into a path or a user agent never reaches a log line or the
usage tables, whatever its case, prefixed or bare `<key-id>:<secret>`, percent-encoded colon."""

from __future__ import annotations

import json
import uuid

from hypothesis import given
from hypothesis import strategies as st

from keyport.domain.keys import generate_key
from keyport.domain.usage import MAX_PATH_LENGTH, without_keys
from keyport.services.observability.request_log import log_line
from keyport.services.observability.request_record import RequestRecord


def spelled(key: str, how: str) -> str:
    _, key_id, secret = key.split(":")
    return {
        "as issued": key,
        "upper prefix": f"AK_LIVE:{key_id}:{secret}",
        "mixed prefix": f"Ak_Live:{key_id}:{secret}",
        "upper key id": f"ak_live:{key_id.upper()}:{secret}",
        "encoded colons": f"ak_live%3A{key_id}%3a{secret}",
        "bare": f"{key_id}:{secret}",
        "bare upper": f"{key_id.upper()}:{secret}",
        "bare encoded": f"{key_id}%3A{secret}",
    }[how]


HOW = st.sampled_from(
    [
        "as issued",
        "upper prefix",
        "mixed prefix",
        "upper key id",
        "encoded colons",
        "bare",
        "bare upper",
        "bare encoded",
    ]
)
AROUND = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=30)


@given(how=HOW, before=AROUND, after=st.sampled_from(["", " ", "/x", "?a=1", "\t", ")"]))
def test_no_spelling_of_a_key_survives_redaction(how: str, before: str, after: str) -> None:
    key = generate_key(uuid.uuid4())
    secret = key.split(":")[2]
    text = before + spelled(key, how) + after
    cleaned = without_keys(text, 10_000)
    assert secret not in cleaned
    assert secret[:20] not in cleaned
    assert "[redacted]" in cleaned


def test_the_key_id_stays_and_ordinary_text_is_untouched() -> None:
    key = generate_key(uuid.uuid4())
    key_id = key.split(":")[1]
    assert without_keys(f"/v4/user/{key_id}:{key.split(':')[2]}", 256) == (
        f"/v4/user/{key_id}:[redacted]"
    )
    for ordinary in [
        "/v4/user/me",
        "curl/8.5.0",
        "Mozilla/5.0 (X11; Linux x86_64)",
        f"/v4/user/{key_id}",
    ]:
        assert without_keys(ordinary, 256) == ordinary


def test_an_upper_case_key_in_a_path_never_reaches_the_request_log() -> None:
    key = generate_key(uuid.uuid4())
    record = RequestRecord(
        request_id="r1",
        method="GET",
        path="/v4/" + key.upper(),
        route=None,
        status=404,
        latency=0.001,
        client_ip="192.0.2.1",
        user_agent=f"bot {key.split(':', 1)[1]}",
        key_id=None,
        acting_user_id=None,
        auth_failure=None,
        started_at=0.0,
    )
    line = log_line(record).decode()
    assert key.split(":")[2] not in line and key.split(":")[2].upper() not in line
    assert json.loads(line)["path"] == "/v4/ak_live:[redacted]"
    assert len(json.loads(line)["path"]) <= MAX_PATH_LENGTH
