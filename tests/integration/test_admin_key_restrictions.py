"""Scopes and IP allowlists in the dashboard: set at creation, shown on list and detail
("Full access" for `*`), changed on the key page, refused with the reason when invalid."""

from __future__ import annotations

import re

import httpx

from keyport.bootstrap import Container
from keyport.domain.keys import parse_key_id
from tests.conftest import Tenant
from tests.support.admin import create_key, shown_key, text_of


def access_of(page: str) -> list[str]:
    return [text_of(m) for m in re.findall(r'class="[^"]*key-access[^"]*">(.*?)</', page, re.S)]


async def test_a_key_made_in_the_form_with_scopes_and_networks_is_restricted(
    owner: tuple[httpx.AsyncClient, str], container: Container, tenant: Tenant
) -> None:
    http, csrf = owner
    created = await create_key(
        http,
        csrf,
        name="Orders reader",
        scopes="orders:read, users:read",
        allowed_ips="192.0.2.0/24\n2001:db8::/32",
    )
    assert created.status_code == 201
    key_id = parse_key_id(shown_key(created))
    assert key_id is not None
    key = await container.keys.get_key(tenant.company_id, key_id)
    assert key.scopes == ("orders:read", "users:read")
    assert key.allowed_ips == ("192.0.2.0/24", "2001:db8::/32")
    listing = (await http.get("/admin/api-keys")).text
    assert "orders:read users:read · from 2 networks" in access_of(listing)
    assert "Full access" in access_of(listing)  # the tenant's own key
    detail = (await http.get(f"/admin/api-keys/{key_id}")).text
    assert access_of(detail) == ["orders:read users:read"]
    assert "<code>192.0.2.0/24</code>, <code>2001:db8::/32</code>" in detail


async def test_bad_scopes_in_the_form_are_shown_beside_the_field(
    owner: tuple[httpx.AsyncClient, str],
) -> None:
    http, csrf = owner
    answer = await create_key(http, csrf, scopes="Orders", allowed_ips="10.0.0.1/8")
    assert answer.status_code == 400
    assert "Scopes &#39;Orders&#39; is not a scope: use * or name:action." in answer.text


async def test_the_key_page_changes_scopes_and_networks(
    owner: tuple[httpx.AsyncClient, str], container: Container, tenant: Tenant
) -> None:
    http, csrf = owner
    detail = (await http.get(f"/admin/api-keys/{tenant.key_id}")).text
    assert access_of(detail) == ["Full access"]
    saved = await http.post(
        f"/admin/api-keys/{tenant.key_id}/restrictions",
        data={"csrf_token": csrf, "scopes": "users:read", "allowed_ips": "203.0.113.0/24"},
    )
    assert saved.status_code == 303
    key = await container.keys.get_key(tenant.company_id, tenant.key_id)
    assert (key.scopes, key.allowed_ips) == (("users:read",), ("203.0.113.0/24",))
    page = (await http.get(saved.headers["location"])).text
    assert "Scopes, allowed networks and rate limit saved" in page
    assert "Scopes changed" in page and "Allowed IPs changed" in page
    refused = await http.post(
        f"/admin/api-keys/{tenant.key_id}/restrictions",
        data={"csrf_token": csrf, "scopes": "", "allowed_ips": "10.0.0.1/8"},
    )
    assert refused.status_code == 400
    assert "Allowed IP networks 10.0.0.1/8 has host bits set" in text_of(refused.text)
    unchanged = await container.keys.get_key(tenant.company_id, tenant.key_id)
    assert unchanged.scopes == ("users:read",)  # nothing of a refused form is saved
    cleared = await http.post(
        f"/admin/api-keys/{tenant.key_id}/restrictions",
        data={"csrf_token": csrf, "scopes": "", "allowed_ips": ""},
    )
    assert cleared.status_code == 303
    key = await container.keys.get_key(tenant.company_id, tenant.key_id)
    assert (key.scopes, key.allowed_ips) == (("*",), ())


async def test_a_missing_csrf_token_changes_nothing(
    owner: tuple[httpx.AsyncClient, str], container: Container, tenant: Tenant
) -> None:
    http, _ = owner
    answer = await http.post(
        f"/admin/api-keys/{tenant.key_id}/restrictions", data={"scopes": "a:b"}
    )
    assert answer.status_code == 403
    key = await container.keys.get_key(tenant.company_id, tenant.key_id)
    assert key.scopes == ("*",)


async def test_the_key_page_sets_the_rate_limit_and_names_every_bad_field_at_once(
    owner: tuple[httpx.AsyncClient, str], container: Container, tenant: Tenant
) -> None:
    """Issue 33, items 4 and 8: the limit is shown and edited on the key page; a form with
    several bad fields names each of them, and saves nothing."""
    http, csrf = owner
    detail = text_of((await http.get(f"/admin/api-keys/{tenant.key_id}")).text)
    assert "Rate limit 100 requests a minute the server" in detail
    saved = await http.post(
        f"/admin/api-keys/{tenant.key_id}/restrictions",
        data={"csrf_token": csrf, "scopes": "", "allowed_ips": "", "rate_limit": "250"},
    )
    assert saved.status_code == 303
    assert (await container.keys.get_key(tenant.company_id, tenant.key_id)).rate_limit == 250
    page = text_of((await http.get(saved.headers["location"])).text)
    assert "Rate limit 250 requests a minute" in page and "Rate limit changed" in page

    refused = await http.post(
        f"/admin/api-keys/{tenant.key_id}/restrictions",
        data={"csrf_token": csrf, "scopes": "Orders", "allowed_ips": "nowhere", "rate_limit": "x"},
    )

    assert refused.status_code == 400
    errors = re.findall(r'class="field__error"[^>]*>(.*?)</p>', refused.text, re.S)
    assert [text_of(e) for e in errors] == [
        "Scopes 'Orders' is not a scope: use * or name:action.",
        "Allowed IP networks nowhere is not an IPv4 or IPv6 network.",
        "Rate limit must be a whole number of requests a minute from 1 to 1000000.",
    ]
    assert (await container.keys.get_key(tenant.company_id, tenant.key_id)).rate_limit == 250


async def test_a_rate_limit_set_in_the_create_form_is_the_keys_own(
    owner: tuple[httpx.AsyncClient, str], container: Container, tenant: Tenant
) -> None:
    http, csrf = owner
    created = await create_key(http, csrf, name="Limited", rate_limit="30")
    assert created.status_code == 201
    key_id = parse_key_id(shown_key(created))
    assert key_id is not None
    assert (await container.keys.get_key(tenant.company_id, key_id)).rate_limit == 30
