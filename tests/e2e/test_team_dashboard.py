"""Team and account security in a real browser against a real `keyport serve`.

Invite → accept → sign in, role change, removal ending the session, password change ending
other sessions, and TOTP set up → sign out → sign in with a code computed here from the
secret shown → a recovery code working once. Screenshots land in test-artifacts/screenshots/.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator
from itertools import count
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS, Person, Site, populate, shoot, sign_in
from tests.support.seed import create_user
from tests.support.server import ServerProcess, keyport_env

pytestmark = pytest.mark.browser
_numbers = count(1)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("team")
    database = folder / "keyport.db"
    env = keyport_env(f"sqlite:///{database}")
    owner, admin, member, other_key_id = populate(env)
    server = ServerProcess(env, folder / "server.log")
    server.env["KEYPORT_PUBLIC_URL"] = server.base_url  # links point at this server
    server.start()
    try:
        yield Site(server, database, owner, admin, member, other_key_id)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with sync_playwright() as driver:
        launched = launch(driver)
        try:
            yield launched
        finally:
            launched.close()


def launch(driver: Playwright) -> Browser:
    return driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def new_page(browser: Browser, site: Site) -> tuple[BrowserContext, Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.base_url)
    return context, context.new_page()


@pytest.fixture
def page(browser: Browser, site: Site) -> Iterator[Page]:
    context, opened = new_page(browser, site)
    try:
        yield opened
    finally:
        context.close()


@pytest.fixture
def second_page(browser: Browser, site: Site) -> Iterator[Page]:
    context, opened = new_page(browser, site)
    try:
        yield opened
    finally:
        context.close()


def acme_id(site: Site) -> str:
    with sqlite3.connect(site.database) as connection:
        row = connection.execute(
            "SELECT company_id FROM users WHERE email = ?", (site.owner.email,)
        ).fetchone()
    return str(row[0])


def fresh_person(site: Site, role: str = "member") -> Person:
    """A user of its own, so that tests never depend on one another's changes."""
    person = Person(f"{role}{next(_numbers)}-{time.monotonic_ns()}@acme.test", "fresh-password-1")
    create_user(
        site.server.env,
        person.email,
        "Fresh",
        role.capitalize(),
        role=role,
        password=person.password,
        company_id=acme_id(site),
    )
    return person


def logged_after(site: Site, marker: str, timeout: float = 20.0) -> str:
    """The server's output once `marker` is in it (the request log is written by a thread)."""
    deadline = time.monotonic() + timeout
    while marker not in site.server.output():
        if time.monotonic() > deadline:
            raise AssertionError(f"{marker!r} never reached the server log")
        time.sleep(0.1)
    return site.server.output()


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/admin/login\?notice=signed-out$"))


def expect_signed_out(page: Page, site: Site) -> None:
    page.goto(f"{site.base_url}/admin/account")
    expect(page).to_have_url(re.compile(r"/admin/login\?"))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_invite_accept_and_sign_in(page: Page, second_page: Page, site: Site) -> None:
    sign_in(page, site, site.owner)
    page.goto(f"{site.base_url}/admin/team")
    page.get_by_label("Email").fill("nina@acme.test")
    page.get_by_label("Role", exact=True).select_option("member")
    page.get_by_label("First name").fill("Nina")
    page.get_by_label("Last name").fill("Newcomer")
    page.get_by_role("button", name="Create invitation link").click()

    expect(page.get_by_role("heading", name="Invitation created")).to_be_visible()
    link = page.locator("#invitation-link").inner_text().strip()
    assert link.startswith(f"{site.base_url}/admin/invite/")
    shoot(page, "team-invitation-link.png")
    page.get_by_role("link", name="Back to the team").click()
    expect(page.locator("tr", has_text="nina@acme.test")).to_contain_text("Invited")
    assert link not in page.content()

    second_page.goto(link)
    expect(second_page.get_by_role("heading", name="Join Acme Robotics")).to_be_visible()
    expect(second_page.get_by_label("First name")).to_have_value("Nina")
    second_page.get_by_label("Password", exact=True).fill("nina-password-1")
    second_page.get_by_label("Password again").fill("nina-password-1")
    shoot(second_page, "invitation.png")
    second_page.get_by_role("button", name="Accept and sign in").click()

    expect(second_page).to_have_url(re.compile(r"/admin/account\?notice=welcome$"))
    expect(second_page.get_by_role("status")).to_contain_text("Welcome")
    sign_out(second_page)
    sign_in(second_page, site, Person("nina@acme.test", "nina-password-1"))
    second_page.goto(f"{site.base_url}/admin/account")
    expect(second_page.get_by_role("heading", name="Your account")).to_be_visible()

    second_page.goto(link)  # used: a clear page, never a form
    expect(second_page.get_by_role("heading", name="This link no longer works")).to_be_visible()
    expect(second_page.locator("input[type=password]")).to_have_count(0)
    shoot(second_page, "invitation-used.png")
    page.goto(f"{site.base_url}/admin/team")
    expect(page.locator("tr", has_text="nina@acme.test")).not_to_contain_text("Invited")
    shoot(page, "team.png")
    output = logged_after(site, '"path":"/admin/invite/[redacted]"')
    assert link.rsplit("/", 1)[1] not in output  # the token never reaches a log line


def test_the_owner_changes_a_role(page: Page, site: Site) -> None:
    person = fresh_person(site)
    sign_in(page, site, site.owner)
    page.goto(f"{site.base_url}/admin/team")
    row = page.locator("tr", has_text=person.email)

    row.get_by_label(f"Role of {person.email}").select_option("admin")
    row.get_by_role("button", name="Change role").click()

    expect(page.get_by_role("status")).to_contain_text("Role changed")
    expect(page.get_by_label(f"Role of {person.email}")).to_have_value("admin")
    page.goto(f"{site.base_url}/admin/audit")
    expect(page.get_by_text(f"{person.email}: member → admin")).to_be_visible()


def test_removing_someone_ends_their_session(page: Page, second_page: Page, site: Site) -> None:
    person = fresh_person(site)
    sign_in(second_page, site, person)
    second_page.goto(f"{site.base_url}/admin/account")
    expect(second_page.get_by_role("heading", name="Your account")).to_be_visible()

    sign_in(page, site, site.owner)
    page.goto(f"{site.base_url}/admin/team")
    page.locator("tr", has_text=person.email).get_by_role("link", name="Remove").click()
    expect(page.get_by_role("heading", name=re.compile("^Remove Fresh Member"))).to_be_visible()
    page.get_by_role("button", name=f"Yes, remove {person.email}").click()
    expect(page.get_by_role("status")).to_contain_text("Their sessions have ended")
    expect(page.locator("tr", has_text=person.email)).to_have_count(0)

    expect_signed_out(second_page, site)


def test_a_password_change_ends_the_other_sessions(
    page: Page, second_page: Page, site: Site
) -> None:
    person = fresh_person(site, "admin")
    sign_in(second_page, site, person)
    sign_in(page, site, person)
    page.goto(f"{site.base_url}/admin/account")
    page.get_by_label("Current password").fill(person.password)
    page.get_by_label("New password", exact=True).fill("changed-password-1")
    page.get_by_label("New password again").fill("changed-password-1")
    page.get_by_role("button", name="Change password").click()

    expect(page.get_by_role("status")).to_contain_text("Your other sessions have ended")
    shoot(page, "account.png")
    expect_signed_out(second_page, site)
    page.goto(f"{site.base_url}/admin/api-keys")  # this one stays signed in
    expect(page.get_by_role("heading", name="API keys")).to_be_visible()


def test_two_factor_set_up_then_sign_in_with_a_code_and_a_recovery_code(
    page: Page, site: Site
) -> None:
    person = fresh_person(site, "admin")
    sign_in(page, site, person)
    page.goto(f"{site.base_url}/admin/account")
    page.get_by_role("button", name="Set up two-factor sign-in").click()
    expect(page.get_by_role("heading", name="Set up two-factor sign-in")).to_be_visible()
    expect(page.get_by_alt_text("QR code for your authenticator app")).to_be_visible()
    secret = page.locator("#totp-secret").inner_text().strip()
    totp = pyotp.TOTP(secret)
    shoot(page, "account-two-factor-setup.png")
    page.get_by_label("Code from the app").fill(totp.now())
    page.get_by_role("button", name="Turn on two-factor sign-in").click()

    expect(page.get_by_role("heading", name="Two-factor sign-in is on")).to_be_visible()
    codes = [c.strip() for c in page.locator("#recovery-codes code").all_inner_texts()]
    assert len(codes) == 10
    shoot(page, "account-recovery-codes.png")
    page.get_by_role("link", name="I have saved the codes").click()
    sign_out(page)

    sign_in(page, site, person)
    expect(page.get_by_role("heading", name="Two-factor sign-in")).to_be_visible()
    shoot(page, "login-code.png")
    # The code used to turn it on may not be used again: the next step's code is allowed.
    page.get_by_label("Authentication code").fill(totp.at(time.time() + 30))
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("heading", name="API keys")).to_be_visible()
    sign_out(page)

    for attempt in range(2):
        sign_in(page, site, person)
        page.get_by_label("Authentication code").fill(codes[0])
        page.get_by_role("button", name="Verify").click()
        if attempt == 0:
            expect(page.get_by_role("heading", name="API keys")).to_be_visible()
            page.goto(f"{site.base_url}/admin/account")
            expect(page.get_by_text("9 of 10 recovery codes left")).to_be_visible()
            sign_out(page)
        else:
            expect(page.get_by_role("alert")).to_contain_text("already used")
    output = logged_after(site, '"path":"/admin/login/code"')
    assert secret not in output and codes[0] not in output
