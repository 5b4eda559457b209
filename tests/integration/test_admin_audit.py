"""The dashboard's audit log page and its CSV export."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator

import httpx
import pytest

from keyport.bootstrap import Container
from keyport.domain.audit import Actor, AuditAction
from keyport.domain.users import NewUser
from tests.conftest import Tenant
from tests.support.admin import (
    create_key,
    dashboard,
    hidden,
    post_login,
    shown_key,
    sign_in,
    text_of,
)


@pytest.fixture
async def admin(
    container: Container, tenant: Tenant
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    async with dashboard(container) as http:
        yield http, await sign_in(http, tenant.admin.email, "admin-password-1")


async def lifecycle(http: httpx.AsyncClient, csrf: str) -> str:
    """Create, deactivate, activate and revoke a key through the dashboard; its id."""
    key_id = shown_key(await create_key(http, csrf, name="Webhook relay")).split(":")[1]
    for change in ["deactivate", "activate", "revoke"]:
        answer = await http.post(
            f"/admin/api-keys/{key_id}/{change}", data={"csrf_token": csrf, "back_to": "list"}
        )
        assert answer.status_code == 303
    return key_id


def without_time(row: str) -> str:
    return re.sub(r"^\d+ \w+ \d{4}, \d\d:\d\d \S+ ", "", row)


def rows(page: str) -> list[str]:
    body = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [text_of(row) for row in re.findall(r"<tr>.*?</tr>", body, flags=re.S)]


async def test_the_audit_page_lists_key_changes_and_sign_ins_with_actor_and_ip(
    container: Container, tenant: Tenant, admin: tuple[httpx.AsyncClient, str]
) -> None:
    http, csrf = admin
    async with dashboard(container, client_ip="192.0.2.99") as stranger:
        assert (
            await post_login(stranger, tenant.admin.email, "not-the-password")
        ).status_code == 400
    await lifecycle(http, csrf)
    page = await http.get("/admin/audit")

    assert page.status_code == 200
    listed = rows(page.text)
    by_admin = "Ada Admin admin@acme.test"
    on_key = f"{by_admin} Webhook relay 203.0.113.7"
    assert [without_time(row) for row in listed[:6]] == [
        f"Key revoked Status active → revoked {on_key}",
        f"Key activated Status inactive → active {on_key}",
        f"Key deactivated Status active → inactive {on_key}",
        f"Key created Valid for 30 days {on_key}",
        f"Sign-in failed Wrong password {by_admin} Ada Admin 192.0.2.99",
        f"Signed in {by_admin} Ada Admin 203.0.113.7",
    ]
    assert 'aria-current="page">Audit log</a>' in page.text


async def test_the_audit_page_filters_by_actor_action_and_key(
    container: Container, tenant: Tenant, admin: tuple[httpx.AsyncClient, str]
) -> None:
    http, csrf = admin
    key_id = await lifecycle(http, csrf)
    await container.users.create_user(
        tenant.company_id, NewUser("new@acme.test", "Nia", "New", "UTC"), Actor.cli()
    )

    by_key = rows((await http.get(f"/admin/audit?key={key_id}")).text)
    by_action = rows((await http.get(f"/admin/audit?action={AuditAction.USER_CREATED}")).text)
    by_owner = await http.get(f"/admin/audit?actor={tenant.owner.id}")
    by_admin = rows(
        (await http.get(f"/admin/audit?actor={tenant.admin.id}&action=auth.sign_in")).text
    )

    events = [" ".join(without_time(row).split()[:2]) for row in by_key]
    assert events == ["Key revoked", "Key activated", "Key deactivated", "Key created"]
    assert all("Webhook relay" in row for row in by_key)
    assert any(
        "User created new@acme.test as member Operator (CLI) Nia New" in r for r in by_action
    )
    assert all("User created" in row for row in by_action)
    assert "No events match these filters" in text_of(by_owner.text)
    assert len(by_admin) == 1 and "Signed in" in by_admin[0]
    assert (
        f'<option value="{key_id}" selected>Webhook relay</option>'
        in (await http.get(f"/admin/audit?key={key_id}")).text
    )


async def test_the_audit_page_is_paginated(
    container: Container, tenant: Tenant, admin: tuple[httpx.AsyncClient, str]
) -> None:
    http, _ = admin
    for n in range(60):
        await container.keys.issue_key(tenant.company_id, name=f"k{n}", days=5, actor=Actor.cli())
    first = (await http.get("/admin/audit?action=api_key.created")).text
    second = (await http.get("/admin/audit?action=api_key.created&page=2")).text

    total = 61  # the tenant's own key, and 60 more
    assert len(rows(first)) == 50 and len(rows(second)) == total - 50
    assert f"Page 1 of 2 · {total} events" in text_of(first)
    assert 'href="/admin/audit?action=api_key.created&amp;page=2" rel="next"' in first
    assert 'href="/admin/audit?action=api_key.created&amp;page=1" rel="prev"' in second


async def test_the_csv_export_holds_the_filtered_events_and_defuses_formulas(
    container: Container, tenant: Tenant, admin: tuple[httpx.AsyncClient, str]
) -> None:
    http, csrf = admin
    key_id = shown_key(await create_key(http, csrf, name="=HYPERLINK(1)")).split(":")[1]
    await http.post(f"/admin/api-keys/{key_id}/deactivate", data={"csrf_token": csrf})
    answer = await http.get(f"/admin/audit.csv?key={key_id}")

    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert re.fullmatch(
        r'attachment; filename="keyport-audit-\d{8}-\d{6}\.csv"',
        answer.headers["content-disposition"],
    )
    table = list(csv.DictReader(io.StringIO(answer.text)))
    assert [(r["action"], r["actor_email"], r["ip"], r["target_id"]) for r in table] == [
        ("api_key.deactivated", "admin@acme.test", "203.0.113.7", key_id),
        ("api_key.created", "admin@acme.test", "203.0.113.7", key_id),
    ]
    assert table[0]["target"] == "'=HYPERLINK(1)"
    assert table[1]["details"].startswith("{")


async def test_members_get_the_403_page_and_other_companies_never_show(
    container: Container, tenant: Tenant, other_tenant: Tenant
) -> None:
    async with dashboard(container) as member:
        await sign_in(member, tenant.member.email, "member-password-1")
        refused = [await member.get("/admin/audit"), await member.get("/admin/audit.csv")]
    async with dashboard(container) as owner:
        await sign_in(owner, other_tenant.owner.email, "owner-password-1")
        theirs = (await owner.get("/admin/audit")).text
        export = (await owner.get("/admin/audit.csv")).text

    assert [r.status_code for r in refused] == [403, 403]
    assert "Only company owners and admins can do this" in text_of(refused[0].text)
    for foreign in [tenant.key_id, tenant.admin.id, tenant.member.email, "Acme"]:
        assert foreign not in theirs and foreign not in export
    assert hidden(theirs, "csrf_token")
