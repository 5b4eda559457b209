"""Driving the dashboard over HTTP in integration tests: sign in, read forms, post them."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx

from keyport.bootstrap import Container
from keyport.web.app import create_app

ORIGIN = "https://keyport.test"  # Secure cookies are only sent over https (or localhost)
CLIENT_IP = "203.0.113.7"
KEY_IN_TEXT = re.compile(r"ak_live:[0-9a-f-]{36}:[0-9A-Za-z]{50}")


@asynccontextmanager
async def dashboard(
    container: Container, *, base_url: str = ORIGIN, client_ip: str = CLIENT_IP
) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(
        app=create_app(container, run_background=False), client=(client_ip, 50000)
    )
    async with httpx.AsyncClient(transport=transport, base_url=base_url) as http:
        yield http


def hidden(page: str, name: str) -> str:
    """The value of the first form field called `name` on the page."""
    found = re.search(rf'name="{re.escape(name)}" value="([^"]*)"', page)
    assert found is not None, f"no field {name!r} on the page"
    return html.unescape(found.group(1))


def text_of(page: str) -> str:
    """What a person reads: tags dropped, entities decoded, whitespace collapsed."""
    body = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", page, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


async def post_login(
    http: httpx.AsyncClient, email: str, password: str, *, next_path: str = ""
) -> httpx.Response:
    form = await http.get("/admin/login")
    return await http.post(
        "/admin/login",
        data={
            "csrf_token": hidden(form.text, "csrf_token"),
            "email": email,
            "password": password,
            "next": next_path,
        },
    )


async def sign_in(http: httpx.AsyncClient, email: str, password: str) -> str:
    """Signs in and returns the session's CSRF token."""
    answer = await post_login(http, email, password)
    assert answer.status_code == 303, answer.text
    return hidden((await http.get("/admin/api-keys")).text, "csrf_token")


async def create_key(
    http: httpx.AsyncClient,
    csrf: str,
    *,
    name: str = "",
    expiry: str = "30",
    custom_days: str = "",
    scopes: str = "",
    allowed_ips: str = "",
    rate_limit: str = "",
) -> httpx.Response:
    form = await http.get("/admin/api-keys/new")
    return await http.post(
        "/admin/api-keys",
        data={
            "csrf_token": csrf,
            "nonce": hidden(form.text, "nonce"),
            "name": name,
            "expiry": expiry,
            "custom_days": custom_days,
            "scopes": scopes,
            "allowed_ips": allowed_ips,
            "rate_limit": rate_limit,
        },
    )


def shown_key(answer: httpx.Response) -> str:
    found = KEY_IN_TEXT.search(answer.text)
    assert found is not None, "no key on the page"
    return found.group(0)


def count_checks(*containers: Container) -> list[int]:
    """Counts password verifications (the real ones still run)."""
    checked = [0]
    for container in containers:
        real: Callable[[str | None, str], Awaitable[bool]] = container.passwords.verify

        async def counting(
            password_hash: str | None,
            password: str,
            real: Callable[[str | None, str], Awaitable[bool]] = real,
        ) -> bool:
            checked[0] += 1
            return await real(password_hash, password)

        container.passwords.verify = counting  # type: ignore[method-assign]
    return checked
