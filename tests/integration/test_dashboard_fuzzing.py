"""Issue 9, item 5: hostile input to the dashboard and the API bodies never answers 500.

Hypothesis writes the dashboard's forms (sign-in, create key), its query strings, paths under
/admin/static and raw request bodies (invalid UTF-8, other encodings, broken form encoding);
every answer must be below 500 and nothing may be logged as an unhandled error. This finds a
class of bug (`"²".isdigit()` is true and `int("²")` fails), not one instance. On SQLite and
PostgreSQL.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyport.bootstrap import Container
from keyport.domain.audit import Actor
from keyport.domain.errors import ValidationFailed
from tests.conftest import Tenant
from tests.support.admin import create_key, dashboard, hidden, post_login
from tests.support.api_calls import validation_failed

FUZZ = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
ERRORS_LOGGER = "keyport.web.errors"
# Text a person, a paste or an attacker may put in a field: digits of other scripts,
# superscripts, controls, bidi overrides, surrogate-free astral characters, long runs.
TRICKY = st.sampled_from(
    ["²", "١٢", "٣", "Ⅻ", "0x10", "1e3", "-1", "+5", " 7 ", "\x00", "\u202e", "\u0085", "30\n"]
)
field_text = st.one_of(
    st.text(max_size=40),
    TRICKY,
    st.lists(TRICKY, min_size=1, max_size=4).map("".join),
    st.integers(-(10**30), 10**30).map(str),
)


def assert_handled(answer: httpx.Response, caplog: pytest.LogCaptureFixture) -> None:
    assert answer.status_code < 500, answer.text[:500]
    assert "Traceback" not in answer.text
    unhandled = [
        r for r in caplog.records if r.name == ERRORS_LOGGER and r.levelno >= logging.ERROR
    ]
    assert not unhandled, unhandled[0].getMessage()


@FUZZ
@given(
    name=field_text,
    expiry=st.one_of(st.sampled_from(["7", "30", "custom"]), field_text),
    custom_days=field_text,
)
async def test_the_create_key_form_never_fails(
    owner: tuple[httpx.AsyncClient, str],
    caplog: pytest.LogCaptureFixture,
    name: str,
    expiry: str,
    custom_days: str,
) -> None:
    http, csrf = owner
    caplog.clear()
    answer = await create_key(http, csrf, name=name, expiry=expiry, custom_days=custom_days)
    assert_handled(answer, caplog)
    assert answer.status_code in {201, 400}, answer.status_code


async def test_a_superscript_in_custom_days_is_a_form_error_not_a_500(
    owner: tuple[httpx.AsyncClient, str], caplog: pytest.LogCaptureFixture
) -> None:
    http, csrf = owner
    answer = await create_key(http, csrf, expiry="custom", custom_days="²")
    assert_handled(answer, caplog)
    assert answer.status_code == 400
    assert "Expiration must be a whole number of days." in answer.text
    # The form comes back with a fresh nonce: correcting it works.
    again = await http.post(
        "/admin/api-keys",
        data={
            "csrf_token": csrf,
            "nonce": hidden(answer.text, "nonce"),
            "expiry": "custom",
            "custom_days": "2",
        },
    )
    assert again.status_code == 201


@FUZZ
@given(email=field_text, password=field_text, next_path=field_text)
async def test_the_sign_in_form_never_fails(
    container: Container,
    caplog: pytest.LogCaptureFixture,
    email: str,
    password: str,
    next_path: str,
) -> None:
    caplog.clear()
    async with dashboard(container, client_ip="192.0.2.200") as http:
        answer = await post_login(http, email, password, next_path=next_path)
    assert_handled(answer, caplog)
    assert answer.status_code in {400, 429}, answer.status_code


@FUZZ
@given(
    page=st.sampled_from(["/admin/api-keys", "/admin/audit", "/admin/audit.csv"]),
    params=st.dictionaries(
        st.sampled_from(["page", "action", "actor", "key", "notice", "chart", "x"]),
        field_text,
        max_size=3,
    ),
)
async def test_dashboard_query_strings_never_fail(
    owner: tuple[httpx.AsyncClient, str],
    caplog: pytest.LogCaptureFixture,
    page: str,
    params: dict[str, str],
) -> None:
    http, _ = owner
    caplog.clear()
    answer = await http.get(page, params=params)
    assert_handled(answer, caplog)


@pytest.mark.sqlite_only
@FUZZ
@given(
    name=st.one_of(
        st.sampled_from(["admin.css", "admin.js", "favicon.svg", "../pyproject.toml", ".."]),
        st.text(min_size=1, max_size=30),
        st.binary(min_size=1, max_size=20).map(lambda raw: quote(raw, safe="")),
    ),
    suffix=st.sampled_from(["", "%00", "%00.html", "%ff", "/", "%2f..%2f", "%c0%ae", "?v=1"]),
)
async def test_static_paths_never_fail(
    container: Container, caplog: pytest.LogCaptureFixture, name: str, suffix: str
) -> None:
    caplog.clear()
    async with dashboard(container) as http:
        answer = await http.get(f"/admin/static/{quote(name, safe='%')}{suffix}")
    assert_handled(answer, caplog)
    assert answer.status_code in {200, 303, 400, 404}, answer.status_code
    if answer.status_code == 200:
        assert name in {"admin.css", "admin.js", "favicon.svg"}


BODY_ENCODINGS = st.sampled_from(["utf-16", "utf-32", "latin-1", "cp1252", "utf-8-sig"])
hostile_bodies = st.one_of(
    st.binary(max_size=200),
    st.tuples(st.text(max_size=30), BODY_ENCODINGS).map(
        lambda t: f'{{"email": "{t[0]}@x.test", "givenName": "{t[0]}"}}'.encode(t[1], "replace")
    ),
    st.just(
        b'{"email": "\xff\xfe@x.test", "givenName": "A", "familyName": "B", "timezone": "UTC"}'
    ),
    st.just(b'{"givenName": "\xed\xa0\x80"}'),  # a UTF-8-encoded surrogate
)


@FUZZ
@given(body=hostile_bodies, method=st.sampled_from(["POST", "PATCH"]))
async def test_api_bodies_in_any_encoding_never_fail(
    client: httpx.AsyncClient,
    tenant: Tenant,
    caplog: pytest.LogCaptureFixture,
    body: bytes,
    method: str,
) -> None:
    caplog.clear()
    path = "/v4/user" if method == "POST" else f"/v4/user/{tenant.member.id}"
    answer = await client.request(
        method,
        path,
        content=body,
        headers={**tenant.auth(tenant.owner), "content-type": "application/json"},
    )
    assert_handled(answer, caplog)


@pytest.mark.sqlite_only
async def test_invalid_utf8_in_a_json_body_is_a_validation_error(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    answer = await client.post(
        "/v4/user",
        content=b'{"email": "\xff@x.test"}',
        headers={**tenant.auth(), "content-type": "application/json"},
    )
    assert (answer.status_code, answer.json()) == validation_failed("body", "must be valid JSON")


@FUZZ
@given(
    body=st.one_of(
        st.binary(max_size=200),
        st.just(b"email=%ff%fe&password=%c3&csrf_token=%"),
        st.just(b"email=\xff\xfe&password=\x00"),
    ),
    content_type=st.sampled_from(
        [
            "application/x-www-form-urlencoded",
            "application/x-www-form-urlencoded; charset=latin-1",
            "multipart/form-data; boundary=xyz",
            "multipart/form-data",
            "text/plain",
        ]
    ),
)
async def test_raw_form_bodies_never_fail(
    owner: tuple[httpx.AsyncClient, str],
    caplog: pytest.LogCaptureFixture,
    body: bytes,
    content_type: str,
) -> None:
    http, _ = owner
    caplog.clear()
    for path in ["/admin/login", "/admin/api-keys", "/admin/logout"]:
        answer = await http.post(path, content=body, headers={"content-type": content_type})
        assert_handled(answer, caplog)


@pytest.mark.parametrize("hidden", ["\u0085", "\u009b", "\u200b", "\u202e"])
async def test_a_key_name_with_hidden_characters_is_refused_beside_the_field(
    owner: tuple[httpx.AsyncClient, str], container: Container, tenant: Tenant, hidden: str
) -> None:
    """Issue 9, item 6: the rule user names follow holds for key names, in every way in."""
    http, csrf = owner
    answer = await create_key(http, csrf, name=f"prod{hidden}key")
    assert answer.status_code == 400
    assert "Name must not contain control characters." in answer.text
    with pytest.raises(ValidationFailed):
        await container.keys.issue_key(
            tenant.company_id, name=f"cli{hidden}key", days=5, actor=Actor.cli()
        )
    assert (await container.keys.list_keys(tenant.company_id)).total == 1  # the tenant's own


@pytest.mark.parametrize("email", ["\x00", "owner@acme.test\x00", "a\nb@acme.test", "\x7f"])
async def test_an_email_with_control_characters_is_an_ordinary_failed_sign_in(
    container: Container, caplog: pytest.LogCaptureFixture, email: str
) -> None:
    """Found by the fuzzer on PostgreSQL, which cannot compare text holding a NUL: a 500."""
    async with dashboard(container, client_ip="192.0.2.201") as http:
        answer = await post_login(http, email, "owner-password-1")
    assert_handled(answer, caplog)
    assert answer.status_code == 400
    assert "Incorrect email or password." in answer.text
