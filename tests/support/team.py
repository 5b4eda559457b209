"""Driving the team, invitation and account pages over HTTP in integration tests."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pyotp

from keyport.bootstrap import Container
from keyport.domain.clock import Clock
from tests.support.admin import dashboard, hidden, post_login, sign_in

INVITE_LINK = re.compile(r"https?://[^\s<\"]+/admin/invite/[A-Za-z0-9_-]{20,}")
SECRET_ON_PAGE = re.compile(r'id="totp-secret">([A-Z2-7]+)<')
RECOVERY_CODE = re.compile(r"<code>([0-9a-f]{5}-[0-9a-f]{5})</code>")


async def csrf_of(http: httpx.AsyncClient) -> str:
    """The session's CSRF token, from a page every signed-in user may see."""
    return hidden((await http.get("/admin/account")).text, "csrf_token")


async def post_form(
    http: httpx.AsyncClient, path: str, csrf: str | None, **fields: str
) -> httpx.Response:
    data = dict(fields)
    if csrf is not None:
        data["csrf_token"] = csrf
    return await http.post(path, data=data)


def invite_link(page: str) -> str:
    found = INVITE_LINK.search(page)
    assert found is not None, "no invitation link on the page"
    return found.group(0)


def code_now(secret: str, clock: Clock, *, steps_later: int = 0) -> str:
    return pyotp.TOTP(secret).at(clock.time() + 30 * steps_later)


async def turn_on_two_factor(http: httpx.AsyncClient, clock: Clock) -> tuple[str, list[str]]:
    """Sets up TOTP through the account pages; the secret and the recovery codes shown."""
    csrf = await csrf_of(http)
    started = await post_form(http, "/admin/account/two-factor/setup", csrf)
    assert started.status_code == 303, started.text
    setup = await http.get("/admin/account/two-factor")
    found = SECRET_ON_PAGE.search(setup.text)
    assert found is not None, "no secret on the setup page"
    secret = found.group(1)
    done = await post_form(
        http, "/admin/account/two-factor/confirm", csrf, code=code_now(secret, clock)
    )
    assert done.status_code == 200, done.text
    return secret, RECOVERY_CODE.findall(done.text)


@asynccontextmanager
async def two_factor_session(
    container: Container, email: str, password: str, clock: Clock
) -> AsyncIterator[tuple[httpx.AsyncClient, str, list[str]]]:
    """A dashboard signed in that turned TOTP on: it, the secret and the recovery codes."""
    async with dashboard(container) as http:
        await sign_in(http, email, password)
        secret, codes = await turn_on_two_factor(http, clock)
        yield http, secret, codes


async def two_factor_on(
    container: Container, email: str, password: str, clock: Clock
) -> tuple[str, list[str]]:
    """Turns TOTP on (in a dashboard of its own): the secret and the recovery codes."""
    async with two_factor_session(container, email, password, clock) as (_, secret, codes):
        return secret, codes


@asynccontextmanager
async def at_code_prompt(
    container: Container, email: str, password: str
) -> AsyncIterator[httpx.AsyncClient]:
    """A fresh dashboard whose password was just accepted: it asks for the code next."""
    async with dashboard(container) as http:
        await post_login(http, email, password)
        yield http


async def submit_code(
    http: httpx.AsyncClient, code: str, form_path: str = "/admin/login/code"
) -> httpx.Response:
    form = await http.get(form_path)
    return await http.post(
        "/admin/login/code",
        data={
            "csrf_token": hidden(form.text, "csrf_token"),
            "code": code,
            "next": hidden(form.text, "next"),
        },
    )
