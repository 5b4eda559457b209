"""The API key pages: who may see them, the key shown once, lifecycle buttons, isolation."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest

from keyport.bootstrap import Container
from keyport.db.uow import SqlUnitOfWorkFactory
from keyport.domain.audit import Actor, AuditAction
from keyport.domain.clock import FixedClock
from keyport.services.ports import AuditFilter
from tests.conftest import Tenant
from tests.support.admin import (
    KEY_IN_TEXT,
    create_key,
    dashboard,
    hidden,
    shown_key,
    sign_in,
    text_of,
)

MEMBERS_REFUSED = "Only company owners and admins can manage API keys"
CSRF_REFUSED = "This form has expired or did not come from this dashboard."


def refused(message: str) -> tuple[int, dict[str, object]]:
    return 401, {"statusCode": 401, "message": message, "error": "Unauthorized"}


async def call_me(client: httpx.AsyncClient, key: str) -> tuple[int, dict[str, object]]:
    answer = await client.get("/v4/user/me", headers={"Authorization": f"Bearer {key}"})
    return answer.status_code, answer.json()


def row_of(page: str, key_id: str) -> str:
    found = re.search(rf'<tr [^>]*id="key-{key_id}".*?</tr>', page, flags=re.S)
    assert found is not None, f"no row for {key_id}"
    return found.group(0)


async def test_anyone_signed_out_is_sent_to_sign_in(container: Container) -> None:
    async with dashboard(container) as http:
        pages = [
            await http.get(path)
            for path in ["/admin/api-keys", "/admin/api-keys/new", "/admin", "/admin/api-keys/x"]
        ]
        posted = await http.post("/admin/api-keys", data={"name": "x", "expiry": "30"})

    assert [(p.status_code, p.headers["location"]) for p in pages] == [
        (303, "/admin/login?next=%2Fadmin%2Fapi-keys"),
        (303, "/admin/login?next=%2Fadmin%2Fapi-keys%2Fnew"),
        (303, "/admin/api-keys"),
        (303, "/admin/login?next=%2Fadmin%2Fapi-keys%2Fx"),
    ]
    assert (posted.status_code, posted.headers["location"]) == (303, "/admin/login")


async def test_member_gets_the_403_page(container: Container, tenant: Tenant) -> None:
    async with dashboard(container) as http:
        await sign_in(http, tenant.member.email, "member-password-1")
        pages = [
            await http.get(path)
            for path in [
                "/admin/api-keys",
                "/admin/api-keys/new",
                f"/admin/api-keys/{tenant.key_id}",
                f"/admin/api-keys/{tenant.key_id}/revoke",
            ]
        ]
        csrf = hidden(pages[0].text, "csrf_token")
        revoke = await http.post(
            f"/admin/api-keys/{tenant.key_id}/revoke", data={"csrf_token": csrf}
        )
        created = await http.post(
            "/admin/api-keys",
            data={"csrf_token": csrf, "nonce": "n" * 22, "name": "Sneaky", "expiry": "30"},
        )

    for answer in [*pages, revoke, created]:
        assert answer.status_code == 403
        assert answer.headers["content-type"] == "text/html; charset=utf-8"
        assert f"Access denied {MEMBERS_REFUSED}" in text_of(answer.text)
        assert KEY_IN_TEXT.search(answer.text) is None
    assert tenant.key_id not in pages[0].text
    assert (await container.keys.get_key(tenant.company_id, tenant.key_id)).status.value == "active"
    assert [k.name for k in (await container.keys.list_keys(tenant.company_id)).keys] == [
        "Test key"
    ]


async def test_admin_sees_the_company_keys_with_their_facts(
    container: Container, tenant: Tenant, other_tenant: Tenant
) -> None:
    async with dashboard(container) as http:
        await sign_in(http, tenant.admin.email, "admin-password-1")
        page = await http.get("/admin/api-keys")

    key = await container.keys.get_key(tenant.company_id, tenant.key_id)
    row = text_of(row_of(page.text, tenant.key_id))
    assert page.status_code == 200
    assert row.startswith(f"Test key {key.hint} Full access Active")
    assert "by Operator (CLI)" in row and "30 days left" in row and "Never" in row
    assert other_tenant.key_id not in page.text
    assert "1 key" in text_of(page.text)


async def test_a_created_key_is_shown_once_on_a_no_store_page_and_works(
    container: Container,
    tenant: Tenant,
    client: httpx.AsyncClient,
    owner: tuple[httpx.AsyncClient, str],
) -> None:
    http, csrf = owner
    created = await create_key(http, csrf, name="CRM sync", expiry="90")

    key = shown_key(created)
    assert created.status_code == 201
    assert created.headers["cache-control"] == "no-store"
    assert "Copy this key now. It will not be shown again." in text_of(created.text)
    assert "90 days left" in text_of(created.text)
    status, me = await call_me(client, key)
    assert (status, me["id"]) == (200, tenant.owner.id)
    for path in ["/admin/api-keys", f"/admin/api-keys/{key.split(':')[1]}"]:
        assert key.split(":")[2][:8] not in (await http.get(path)).text


async def test_sending_the_create_form_twice_makes_one_key(
    container: Container, tenant: Tenant, owner: tuple[httpx.AsyncClient, str]
) -> None:
    http, csrf = owner
    form_page = await http.get("/admin/api-keys/new")
    form = {
        "csrf_token": csrf,
        "nonce": hidden(form_page.text, "nonce"),
        "name": "Once",
        "expiry": "30",
    }
    first = await http.post("/admin/api-keys", data=form)
    again = await http.post("/admin/api-keys", data=form)
    listing = await http.get(again.headers["location"])

    assert first.status_code == 201
    assert (again.status_code, again.headers["location"]) == (
        303,
        "/admin/api-keys?notice=resubmitted",
    )
    assert "no second key was created" in text_of(listing.text)
    assert KEY_IN_TEXT.search(again.text + listing.text) is None
    names = [k.name for k in (await container.keys.list_keys(tenant.company_id)).keys]
    assert sorted(str(name) for name in names) == ["Once", "Test key"]


@pytest.mark.parametrize(
    ("expiry", "custom"),
    [
        ("7", ""),
        ("30", ""),
        ("60", ""),
        ("90", ""),
        ("custom", "1"),
        ("custom", "45"),
        ("custom", " 90 "),
    ],
)
async def test_presets_and_custom_days_from_1_to_90_are_accepted(
    container: Container,
    tenant: Tenant,
    clock: FixedClock,
    owner: tuple[httpx.AsyncClient, str],
    expiry: str,
    custom: str,
) -> None:
    http, csrf = owner
    created = await create_key(http, csrf, expiry=expiry, custom_days=custom)

    days = int(custom) if expiry == "custom" else int(expiry)
    key = await container.keys.get_key(tenant.company_id, shown_key(created).split(":")[1])
    assert created.status_code == 201
    assert key.expires_at == clock.now() + timedelta(days=days)


@pytest.mark.parametrize(
    ("expiry", "custom", "message"),
    [
        ("custom", "0", "Expiration must be between 1 and 90 days."),
        ("custom", "91", "Expiration must be between 1 and 90 days."),
        ("custom", "-3", "Expiration must be a whole number of days."),
        ("custom", "1.5", "Expiration must be a whole number of days."),
        ("custom", "abc", "Expiration must be a whole number of days."),
        ("custom", "", "Expiration must be a whole number of days."),
        ("365", "", "Expiration must be between 1 and 90 days."),
        ("", "", "Expiration must be a whole number of days."),
    ],
)
async def test_any_other_expiry_is_refused_next_to_the_field(
    container: Container,
    tenant: Tenant,
    owner: tuple[httpx.AsyncClient, str],
    expiry: str,
    custom: str,
    message: str,
) -> None:
    http, csrf = owner
    answer = await create_key(http, csrf, name="Kept", expiry=expiry, custom_days=custom)

    error = re.search(r'<p class="field__error" id="expiry-error">([^<]*)</p>', answer.text)
    assert answer.status_code == 400
    assert error is not None and error.group(1) == message
    assert 'value="Kept"' in answer.text
    assert KEY_IN_TEXT.search(answer.text) is None
    assert (await container.keys.list_keys(tenant.company_id)).total == 1


async def test_a_too_long_name_is_refused_next_to_the_field(
    owner: tuple[httpx.AsyncClient, str],
) -> None:
    http, csrf = owner
    answer = await create_key(http, csrf, name="x" * 101)

    error = re.search(r'<p class="field__error" id="name-error">([^<]*)</p>', answer.text)
    assert answer.status_code == 400
    assert error is not None and error.group(1) == "Name must be at most 100 characters."


async def test_a_key_name_is_always_escaped(
    container: Container, tenant: Tenant, owner: tuple[httpx.AsyncClient, str]
) -> None:
    http, csrf = owner
    name = "<script>alert(1)</script>\"'&"
    created = await create_key(http, csrf, name=name)
    key_id = shown_key(created).split(":")[1]
    pages = [
        created,
        await http.get("/admin/api-keys"),
        await http.get(f"/admin/api-keys/{key_id}"),
        await http.get(f"/admin/api-keys/{key_id}/revoke"),
    ]

    for page in pages:
        assert "<script>alert" not in page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;&#34;&#39;&amp;" in page.text


@pytest.mark.parametrize("action", ["deactivate", "activate", "revoke"])
async def test_a_lifecycle_post_without_the_csrf_token_is_refused(
    container: Container, tenant: Tenant, owner: tuple[httpx.AsyncClient, str], action: str
) -> None:
    http, csrf = owner
    if action == "activate":
        await container.keys.deactivate_key(tenant.company_id, tenant.key_id, Actor.cli())
    before = (await container.keys.get_key(tenant.company_id, tenant.key_id)).status
    missing = await http.post(f"/admin/api-keys/{tenant.key_id}/{action}", data={})
    wrong = await http.post(
        f"/admin/api-keys/{tenant.key_id}/{action}", data={"csrf_token": csrf[:-2] + "xx"}
    )

    for answer in (missing, wrong):
        assert answer.status_code == 403
        assert CSRF_REFUSED in text_of(answer.text)
    assert (await container.keys.get_key(tenant.company_id, tenant.key_id)).status == before


async def test_a_create_post_without_the_csrf_token_is_refused(
    container: Container, tenant: Tenant, owner: tuple[httpx.AsyncClient, str]
) -> None:
    http, _ = owner
    form_page = await http.get("/admin/api-keys/new")
    answer = await http.post(
        "/admin/api-keys",
        data={"nonce": hidden(form_page.text, "nonce"), "name": "No token", "expiry": "30"},
    )

    assert answer.status_code == 403
    assert CSRF_REFUSED in text_of(answer.text)
    assert KEY_IN_TEXT.search(answer.text) is None
    assert (await container.keys.list_keys(tenant.company_id)).total == 1


async def test_a_form_posted_from_another_site_is_refused(
    container: Container, tenant: Tenant, owner: tuple[httpx.AsyncClient, str]
) -> None:
    http, csrf = owner
    answer = await http.post(
        f"/admin/api-keys/{tenant.key_id}/revoke",
        data={"csrf_token": csrf},
        headers={"sec-fetch-site": "cross-site"},
    )

    assert answer.status_code == 403
    assert (await container.keys.get_key(tenant.company_id, tenant.key_id)).status.value == "active"


async def test_another_companys_key_is_a_404_everywhere(
    container: Container,
    tenant: Tenant,
    other_tenant: Tenant,
    owner: tuple[httpx.AsyncClient, str],
) -> None:
    http, csrf = owner
    foreign = other_tenant.key_id
    answers = [
        await http.get(f"/admin/api-keys/{foreign}"),
        await http.get(f"/admin/api-keys/{foreign}/revoke"),
    ]
    for action in ["deactivate", "activate", "revoke"]:
        answers.append(
            await http.post(f"/admin/api-keys/{foreign}/{action}", data={"csrf_token": csrf})
        )
    unknown = await http.get("/admin/api-keys/00000000-0000-4000-8000-000000000000")

    for answer in [*answers, unknown]:
        assert answer.status_code == 404
        assert "Not found API key not found" in text_of(answer.text)
        assert "Test key" not in answer.text
    assert answers[0].text == unknown.text
    foreign_key = await container.keys.get_key(other_tenant.company_id, foreign)
    assert foreign_key.status.value == "active"


async def test_deactivate_activate_and_revoke_take_effect_on_the_api_at_once(
    client: httpx.AsyncClient, tenant: Tenant, owner: tuple[httpx.AsyncClient, str]
) -> None:
    http, csrf = owner
    assert (await call_me(client, tenant.key))[0] == 200

    deactivated = await http.post(
        f"/admin/api-keys/{tenant.key_id}/deactivate", data={"csrf_token": csrf, "back_to": "list"}
    )
    assert (deactivated.status_code, deactivated.headers["location"]) == (
        303,
        f"/admin/api-keys?notice=deactivated&key={tenant.key_id}",
    )
    assert await call_me(client, tenant.key) == refused("API key is deactivated")
    listing = await http.get(deactivated.headers["location"])
    assert "API key deactivated." in text_of(listing.text)
    assert "Deactivated" in text_of(row_of(listing.text, tenant.key_id))

    activated = await http.post(
        f"/admin/api-keys/{tenant.key_id}/activate", data={"csrf_token": csrf, "back_to": "detail"}
    )
    assert activated.headers["location"] == f"/admin/api-keys/{tenant.key_id}?notice=activated"
    assert (await call_me(client, tenant.key))[0] == 200

    confirm = await http.get(f"/admin/api-keys/{tenant.key_id}/revoke")
    assert "This is permanent and cannot be undone." in text_of(confirm.text)
    assert (await call_me(client, tenant.key))[0] == 200
    revoked = await http.post(
        f"/admin/api-keys/{tenant.key_id}/revoke",
        data={
            "csrf_token": hidden(confirm.text, "csrf_token"),
            "back_to": hidden(confirm.text, "back_to"),
        },
    )
    assert revoked.status_code == 303
    assert await call_me(client, tenant.key) == refused("Invalid API key")


async def test_a_revoked_key_has_no_buttons_and_cannot_come_back(
    container: Container, tenant: Tenant, owner: tuple[httpx.AsyncClient, str]
) -> None:
    http, csrf = owner
    await container.keys.revoke_key(tenant.company_id, tenant.key_id, Actor.cli())
    row = row_of((await http.get("/admin/api-keys")).text, tenant.key_id)
    again = await http.post(f"/admin/api-keys/{tenant.key_id}/activate", data={"csrf_token": csrf})

    assert "Revoked" in text_of(row)
    assert "<button" not in row and "/revoke" not in row
    assert again.status_code == 409
    assert "API key is revoked and can never be used again" in text_of(again.text)


async def test_dashboard_changes_are_audited_with_the_user_and_ip(
    container: Container, tenant: Tenant
) -> None:
    async with dashboard(container) as http:
        csrf = await sign_in(http, tenant.admin.email, "admin-password-1")
        created = await create_key(http, csrf, name="Audited", expiry="7")
        key_id = shown_key(created).split(":")[1]
        await http.post(f"/admin/api-keys/{key_id}/deactivate", data={"csrf_token": csrf})
        detail = await http.get(f"/admin/api-keys/{key_id}")

    async with SqlUnitOfWorkFactory(container.engine)() as uow:
        events, _ = await uow.audit.list(AuditFilter(target_id=key_id), 10, 0)
    assert [(e.action, e.actor.label, e.actor.user_id, e.actor.ip) for e in events] == [
        (AuditAction.KEY_DEACTIVATED, "user", tenant.admin.id, "203.0.113.7"),
        (AuditAction.KEY_CREATED, "user", tenant.admin.id, "203.0.113.7"),
    ]
    trail = text_of(detail.text.split('id="trail-title"', 1)[1])
    assert re.search(
        r"Deactivated Status active → inactive Ada Admin admin@acme\.test "
        r"203\.0\.113\.7 .* Created Valid for 7 days Ada Admin",
        trail,
    )
    assert "No requests recorded for this key yet." in text_of(detail.text)


async def test_keys_expiring_within_7_days_are_highlighted(
    container: Container, tenant: Tenant, clock: FixedClock, owner: tuple[httpx.AsyncClient, str]
) -> None:
    http, _ = owner
    soon = await container.keys.issue_key(tenant.company_id, name="Soon", days=7, actor=Actor.cli())
    page = (await http.get("/admin/api-keys")).text

    assert "is-expiring" in row_of(page, soon.record.id)
    assert "7 days left" in text_of(row_of(page, soon.record.id))
    assert "is-expiring" not in row_of(page, tenant.key_id)

    clock.advance(timedelta(days=7))
    await sign_in(http, tenant.owner.email, "owner-password-1")  # the session ended meanwhile
    expired = (await http.get("/admin/api-keys")).text
    assert "Expired" in text_of(row_of(expired, soon.record.id))
    assert "Expired today" in text_of(row_of(expired, soon.record.id))
    assert "is-expiring" not in row_of(expired, soon.record.id)


async def test_every_dashboard_answer_carries_the_security_headers(
    container: Container, owner: tuple[httpx.AsyncClient, str]
) -> None:
    http, _ = owner
    async with dashboard(container) as anonymous:
        answers = [await anonymous.get("/admin/login"), await anonymous.get("/admin/nowhere")]
    answers += [
        await http.get("/admin/api-keys"),
        await http.get("/admin/api-keys/new"),
        await http.get("/admin/api-keys/not-a-key"),
        await http.post("/admin/api-keys", data={}),
        await http.get("/admin/static/admin.css"),
    ]

    for answer in answers:
        policy = answer.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        assert "frame-ancestors 'none'" in policy
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "same-origin"
        assert answer.headers["strict-transport-security"] == "max-age=31536000"
    assert [a.headers["cache-control"] for a in answers] == ["no-store"] * 6 + [
        "max-age=86400, public"
    ]
    assert [a.status_code for a in answers] == [200, 404, 200, 200, 404, 403, 200]


async def test_pages_have_no_inline_script_or_style(owner: tuple[httpx.AsyncClient, str]) -> None:
    http, csrf = owner
    pages = [
        await http.get("/admin/api-keys"),
        await http.get("/admin/api-keys/new"),
        await create_key(http, csrf, name="Inline check"),
    ]

    for page in pages:
        scripts = re.findall(r"<script[^>]*>", page.text)
        assert scripts and all(
            re.fullmatch(r'<script src="/admin/static/[^"]+" defer>', s) for s in scripts
        )
        assert " style=" not in page.text and "<style" not in page.text
        assert re.search(r"<[^>]+\son[a-z]+=", page.text) is None
