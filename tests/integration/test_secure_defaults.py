"""Issue 9, item 4: Secure cookies whatever Host or scheme a request claims, a forwarded
scheme believed only from trusted proxies, HSTS over https, and the documented way out
(KEYPORT_SECURE_COOKIES=false) for plain http under another host name."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import httpx
import pytest

from keyport.bootstrap import Container, build_container
from keyport.config import Settings, SettingsError
from keyport.web.app import create_app
from tests.conftest import Tenant
from tests.support.admin import dashboard

# Cookies, forwarded headers and HSTS are decided in the web layer.
pytestmark = pytest.mark.sqlite_only

PROXY = "10.0.0.5"


@asynccontextmanager
async def behind_proxy(container: Container, **changes: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The service as nginx's default `proxy_pass http://127.0.0.1:8000` reaches it: plain
    http, a loopback Host, the client's scheme in X-Forwarded-Proto."""
    settings = replace(
        container.settings, trusted_proxies=(ipaddress.ip_network("10.0.0.0/8"),), **changes
    )
    built = build_container(settings, clock=container.clock)
    transport = httpx.ASGITransport(
        app=create_app(built, run_background=False), client=(PROXY, 50000)
    )
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as http:
            yield http
    finally:
        await built.close()


def login_cookie(answer: httpx.Response) -> str:
    cookies = answer.headers.get_list("set-cookie")
    assert len(cookies) == 1, cookies
    return cookies[0]


async def test_a_tls_proxy_forwarding_a_loopback_host_keeps_cookies_secure_and_gets_hsts(
    container: Container,
) -> None:
    async with behind_proxy(container) as http:
        page = await http.get("/admin/login", headers={"x-forwarded-proto": "https"})
        api = await http.get("/v4/user/me", headers={"x-forwarded-proto": "https"})

    assert login_cookie(page).startswith("__Host-keyport_login_csrf=")
    assert "; Secure" in login_cookie(page)
    for answer in (page, api):
        assert answer.headers["strict-transport-security"] == "max-age=31536000"


async def test_a_forwarded_scheme_from_anyone_else_is_ignored(
    container: Container, tenant: Tenant
) -> None:
    async with dashboard(container, base_url="http://keyport.test") as http:
        claimed = await http.get("/admin/login", headers={"x-forwarded-proto": "https"})
        api = await http.get("/v4/user/me", headers={**tenant.auth(), "x-forwarded-proto": "https"})
    assert "strict-transport-security" not in claimed.headers
    assert "strict-transport-security" not in api.headers
    assert "; Secure" in login_cookie(claimed)  # secure all the same: that is the default


async def test_a_trusted_proxy_saying_http_gets_no_hsts(container: Container) -> None:
    async with behind_proxy(container) as http:
        page = await http.get("/admin/login", headers={"x-forwarded-proto": "http"})
        nonsense = await http.get("/admin/login", headers={"x-forwarded-proto": "gopher"})
    assert "strict-transport-security" not in page.headers
    assert "strict-transport-security" not in nonsense.headers


async def test_https_itself_gets_hsts_on_every_answer(container: Container, tenant: Tenant) -> None:
    async with dashboard(container, base_url="https://keyport.test") as http:
        answers = [
            await http.get("/healthz"),
            await http.get("/v4/user/me", headers=tenant.auth()),
            await http.get("/v4/user/me"),
            await http.get("/admin/login"),
        ]
    assert [a.headers["strict-transport-security"] for a in answers] == ["max-age=31536000"] * 4


async def test_secure_cookies_can_be_turned_off_for_plain_http_elsewhere(
    container: Container,
) -> None:
    plain = build_container(
        replace(container.settings, secure_cookies=False), clock=container.clock
    )
    try:
        async with dashboard(plain, base_url="http://keyport.lan") as http:
            page = await http.get("/admin/login")
    finally:
        await plain.close()
    cookie = login_cookie(page)
    assert cookie.startswith("keyport_login_csrf=") and "Secure" not in cookie
    assert "was not loaded over HTTPS" not in page.text


def test_secure_cookies_are_the_default_and_false_is_the_only_way_out() -> None:
    assert Settings.from_env({}).secure_cookies is True
    assert Settings.from_env({"KEYPORT_SECURE_COOKIES": "false"}).secure_cookies is False
    with pytest.raises(SettingsError, match="KEYPORT_SECURE_COOKIES"):
        Settings.from_env({"KEYPORT_SECURE_COOKIES": "auto"})


def test_the_webhook_lease_is_30_s_and_must_outlast_several_polls() -> None:
    assert Settings.from_env({}).webhook_lease_seconds == 30.0
    env = {"KEYPORT_WEBHOOK_LEASE_SECONDS": "6", "KEYPORT_WEBHOOK_POLL_INTERVAL": "0.2"}
    assert Settings.from_env(env).webhook_lease_seconds == 6.0
    with pytest.raises(SettingsError, match="KEYPORT_WEBHOOK_LEASE_SECONDS"):
        Settings.from_env({"KEYPORT_WEBHOOK_LEASE_SECONDS": "1"})
    with pytest.raises(SettingsError, match="more than twice"):
        Settings.from_env(
            {"KEYPORT_WEBHOOK_LEASE_SECONDS": "4"} | {"KEYPORT_WEBHOOK_POLL_INTERVAL": "2"}
        )
