"""What a new user met in the first hour (issue 33), through the dashboard and the API in
process: every invalid field named at once in plain sentences, events in words, the links and
hints people look for. The browser side is tests/e2e/test_first_hour.py."""

from __future__ import annotations

import re

import httpx

from keyport.bootstrap import Container
from keyport.domain.audit import Actor, AuditAction
from keyport.web.admin.words import action_words
from tests.conftest import Tenant
from tests.support.admin import text_of
from tests.support.team import invite_link, post_form


async def test_the_api_names_every_invalid_field_of_a_new_key_at_once(
    client: httpx.AsyncClient, container: Container, tenant: Tenant
) -> None:
    manager = await container.keys.issue_key(
        tenant.company_id, name="m", days=5, actor=Actor.cli(), scopes=["keys:manage", "*"]
    )
    answer = await client.post(
        "/v1/keys",
        headers={"Authorization": f"Bearer {manager.key}"},
        json={"expiresInDays": 91, "scopes": ["Orders"], "rateLimit": 0, "name": "x" * 101},
    )

    assert answer.status_code == 400
    assert answer.json()["errors"] == [
        {"field": "name", "message": "must be at most 100 characters"},
        {"field": "expiresInDays", "message": "must be between 1 and 90 days"},
        {
            "field": "rateLimit",
            "message": "must be a whole number of requests a minute from 1 to 1000000",
        },
        {"field": "scopes", "message": "'Orders' is not a scope: use * or name:action"},
    ]


async def test_the_create_form_names_every_invalid_field_and_keeps_what_was_typed(
    owner: tuple[httpx.AsyncClient, str],
) -> None:
    http, csrf = owner
    form = await http.get("/admin/api-keys/new")
    nonce = re.search(r'name="nonce" value="([^"]+)"', form.text)
    assert nonce is not None
    answer = await http.post(
        "/admin/api-keys",
        data={
            "csrf_token": csrf,
            "nonce": nonce.group(1),
            "name": "Typed name",
            "expiry": "custom",
            "custom_days": "91",
            "scopes": "Orders",
            "allowed_ips": "",
            "rate_limit": "lots",
        },
    )

    assert answer.status_code == 400
    errors = re.findall(r'class="field__error" id="[^"]+">(.*?)</p>', answer.text)
    assert [text_of(e) for e in errors] == [
        "Expiration must be between 1 and 90 days.",
        "Scopes 'Orders' is not a scope: use * or name:action.",
        "Rate limit must be a whole number of requests a minute from 1 to 1000000.",
    ]
    assert 'value="Typed name"' in answer.text and 'value="lots"' in answer.text


async def test_the_audit_log_and_the_key_trail_name_events_in_words(
    owner: tuple[httpx.AsyncClient, str], container: Container, tenant: Tenant
) -> None:
    rotated = await container.keys.rotate_key(tenant.company_id, tenant.key_id, Actor.cli())
    await container.keys.set_rate_limit(tenant.company_id, rotated.issued.record.id, 5, Actor.cli())
    http, _ = owner
    log = text_of((await http.get("/admin/audit")).text)
    trail = text_of((await http.get(f"/admin/api-keys/{tenant.key_id}")).text)

    assert "Key rotated" in log and "Rate limit changed" in log
    assert "Rotated" in trail
    for raw in ("api_key.rotated", "api_key.rate_limit_set", "api_key.created"):
        assert raw not in log and raw not in trail


async def test_the_team_page_warns_when_invitation_links_point_elsewhere(
    owner: tuple[httpx.AsyncClient, str],
) -> None:
    """The links' base is http://localhost:8000 (the default); the page is opened at
    http://keyport.test: a link handed over would not lead here."""
    http, _ = owner
    page = text_of((await http.get("/admin/team")).text)
    assert (
        "Invitation links start with http://localhost:8000 , but you opened the dashboard at"
        " another address. If people reach Keyport elsewhere, start it with KEYPORT_PUBLIC_URL"
        " set to that address." in page
    )
    same_place = text_of((await http.get("/admin/team", headers={"host": "localhost:8000"})).text)
    assert "Invitation links start with" not in same_place
    loopback = text_of((await http.get("/admin/team", headers={"host": "127.0.0.1:8000"})).text)
    assert "Invitation links start with" not in loopback


async def test_the_invitation_page_names_every_problem_in_sentences(
    owner: tuple[httpx.AsyncClient, str],
) -> None:
    http, csrf = owner
    shown = await post_form(http, "/admin/team/invite", csrf, email="nina@acme.test", role="member")
    link = invite_link(shown.text)
    path = link.split("http://localhost:8000", 1)[1]
    form = await http.get(path)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None
    answer = await http.post(
        path,
        data={
            "csrf_token": token.group(1),
            "given_name": "",
            "family_name": "New",
            "password": "short",
            "confirm_password": "other",
        },
    )

    assert answer.status_code == 400
    assert (
        "First name must not be empty. Password must be at least 10 characters."
        " The two passwords do not match." in text_of(answer.text)
    )
    assert "Please check" not in answer.text


async def test_the_pages_people_look_at_say_what_to_do(
    owner: tuple[httpx.AsyncClient, str],
) -> None:
    """The API docs in the navigation; "Try it" says to put the key in a variable; the scope
    help says that a keys:manage key cannot make a full-access key."""
    http, csrf = owner
    keys = (await http.get("/admin/api-keys")).text
    assert '<a href="/schema" class="mainnav__external">API docs</a>' in keys
    new = text_of((await http.get("/admin/api-keys/new")).text)
    assert "so it cannot create a full-access key unless it has * too" in new
    form = await http.get("/admin/api-keys/new")
    nonce = re.search(r'name="nonce" value="([^"]+)"', form.text)
    assert nonce is not None
    created = await http.post(
        "/admin/api-keys",
        data={"csrf_token": csrf, "nonce": nonce.group(1), "expiry": "30", "name": "Try"},
    )
    assert "export KEYPORT_API_KEY='ak_live:…'" in text_of(created.text)


def test_every_audit_action_reads_as_words() -> None:
    """Known actions have their own words; one added later still reads as words."""
    for action in AuditAction:
        words = action_words(action)
        assert "." not in words and "_" not in words and words[0].isupper(), action
    assert action_words("webhook.added") == "Webhook endpoint added"
    assert action_words("token.created") == "Token created"
    assert action_words("api_key.credits_set") == "Key credits set"
