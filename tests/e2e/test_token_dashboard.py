"""Personal access tokens in a real browser against a real `keyport serve`: a member lands on
/admin/tokens, creates a token with the keyboard alone, copies it once, and calls the API with
it and no user header; an admin revokes it from "Your team's tokens" and the member sees why;
the page reads at phone width. Screenshots land in test-artifacts/screenshots/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS, Site, call_api, populate, shoot, sign_in
from tests.support.server import ServerProcess, keyport_env

pytestmark = pytest.mark.browser
TOKEN = re.compile(r"rgo-[0-9A-Za-z]{32}")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("tokens")
    database = folder / "keyport.db"
    env = keyport_env(f"sqlite:///{database}")
    owner, admin, member, other_key_id = populate(env)
    server = ServerProcess(env, folder / "server.log").start()
    try:
        yield Site(server, database, owner, admin, member, other_key_id)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser, site: Site) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.base_url)
    try:
        yield context.new_page()
    finally:
        context.close()


def tab_to(page: Page, selector: str, limit: int = 60) -> None:
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"document.activeElement.matches({selector!r})"):
            return
    raise AssertionError(f"Tab never reached {selector}")


def test_a_member_creates_copies_and_uses_a_token_with_the_keyboard(page: Page, site: Site) -> None:
    sign_in(page, site, site.member)
    expect(page).to_have_url(f"{site.base_url}/admin/tokens")
    expect(page.get_by_role("link", name="Personal access tokens")).to_have_attribute(
        "aria-current", "page"
    )
    tab_to(page, "#token-name")
    page.keyboard.type("Laptop scripts")
    page.keyboard.press("Tab")  # into the expiry choices, on the checked one (30 days)
    page.keyboard.press("ArrowLeft")  # 7 days
    page.keyboard.press("Enter")

    expect(page.get_by_text("Copy this token now. It will not be shown again.")).to_be_visible()
    token = page.locator("#new-token").inner_text().strip()
    assert TOKEN.fullmatch(token)
    expect(page.locator(".usage-hint")).not_to_contain_text("x-meetergo-api-user-id:")
    page.get_by_role("button", name="Copy token").click()
    expect(page.get_by_text("Copied to the clipboard.")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == token
    shoot(page, "tokens-created.png")

    page.goto(f"{site.base_url}/admin/tokens")
    assert TOKEN.search(page.content()) is None
    expect(page.locator("[data-own-tokens]")).to_contain_text("Laptop scripts")
    expect(page.locator("[data-own-tokens]")).to_contain_text(token[:8] + "…")
    status, me = call_api(site, token)
    assert (status, me["email"]) == (200, site.member.email)


def test_an_admin_revokes_a_team_token_and_its_user_sees_why(
    browser: Browser, page: Page, site: Site
) -> None:
    sign_in(page, site, site.member)
    page.get_by_label("Name").fill("CI runner")
    page.get_by_role("button", name="Create token").click()
    token = page.locator("#new-token").inner_text().strip()
    page.context.clear_cookies()

    sign_in(page, site, site.admin)
    page.goto(f"{site.base_url}/admin/tokens")
    team = page.locator("[data-team-tokens]")
    expect(team).to_contain_text("CI runner")
    team.get_by_role("button", name="Revoke Max Member's token CI runner").click()
    expect(page.get_by_text("Personal access token revoked.")).to_be_visible()
    assert call_api(site, token)[0] == 401
    page.context.clear_cookies()

    sign_in(page, site, site.member)
    notice = page.locator("[data-revoked-notice]")
    expect(notice).to_contain_text("revoked by Ada Admin")
    shoot(page, "tokens-revoked-notice.png")
    notice.get_by_role("button", name="Dismiss").click()
    expect(page.locator("[data-revoked-notice]")).to_have_count(0)


def test_the_tokens_page_reads_at_phone_width(page: Page, site: Site) -> None:
    sign_in(page, site, site.owner)
    page.goto(f"{site.base_url}/admin/tokens")
    page.set_viewport_size({"width": 390, "height": 844})
    expect(page.get_by_role("heading", name="Token policy")).to_be_visible()
    shoot(page, "tokens-mobile.png")
    overflow = page.evaluate("document.documentElement.scrollWidth")
    wide = page.evaluate(
        "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right"
        " > 392).slice(0, 5).map(e => e.tagName + '.' + e.className + '#' + e.id)"
    )
    assert overflow <= 390, f"the page is {overflow}px wide at 390px: {wide}"
