"""What a new user met in the first hour (issue 33), in Debian's Chromium against a real
`keyport serve` started without KEYPORT_PUBLIC_URL: invitation links that follow the served
port, choices that show their state, every page fitting a phone and a laptop, and a rotated
key telling itself apart from its replacement. Screenshots land in test-artifacts/screenshots/.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator
from itertools import count
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect, sync_playwright

from tests.e2e.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    Person,
    Site,
    create_key,
    key_id_of,
    populate,
    shoot,
    sign_in,
)
from tests.support.seed import add_webhook, create_user
from tests.support.server import ServerProcess, keyport_env

pytestmark = pytest.mark.browser
_invited = count(1)  # a new email for each invitation
PHONE: ViewportSize = {"width": 390, "height": 844}
LAPTOP: ViewportSize = {"width": 1280, "height": 800}

# Everything in the viewport's width, and no button cut off by a box that hides overflow.
MEASURE = """() => {
  const width = window.innerWidth;
  const problems = [];
  if (document.documentElement.scrollWidth > width) {
    problems.push(`page is ${document.documentElement.scrollWidth}px wide`);
  }
  const clippers = (element) => {
    const found = [];
    for (let up = element.parentElement; up; up = up.parentElement) {
      const style = getComputedStyle(up);
      if (style.overflowX !== 'visible' || style.overflowY !== 'visible') { found.push(up); }
    }
    return found;
  };
  const controls = document.querySelectorAll('button, .btn, .mainnav a, .account__name');
  for (const control of controls) {
    const box = control.getBoundingClientRect();
    if (box.width === 0 || box.height === 0 || control.closest('[hidden]')) { continue; }
    const name = (control.textContent || '').trim().replace(/\\s+/g, ' ').slice(0, 40);
    if (box.left < 0 || box.right > width + 0.5) {
      problems.push(`"${name}" reaches ${Math.round(box.left)}..${Math.round(box.right)}px`);
      continue;
    }
    for (const clipper of clippers(control)) {
      const edge = clipper.getBoundingClientRect();
      if (box.left < edge.left - 0.5 || box.right > edge.right + 0.5) {
        problems.push(`"${name}" is cut off by ${clipper.className || clipper.tagName}`);
        break;
      }
    }
  }
  return problems;
}"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("first-hour")
    database = folder / "keyport.db"
    # Webhook endpoints on this machine (nothing resolves names here): allowed for the test.
    env = keyport_env(f"sqlite:///{database}", KEYPORT_WEBHOOK_ALLOW_PRIVATE="true")
    assert "KEYPORT_PUBLIC_URL" not in env
    owner, admin, member, other_key_id = populate(env)
    server = ServerProcess(env, folder / "server.log")
    served = Site(server, database, owner, admin, member, other_key_id)
    add_webhook(env, "http://127.0.0.1:9/keyport", ["api_key.rotated"], company_id=_acme(served))
    server.start()
    try:
        yield served
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
    context = browser.new_context(viewport=LAPTOP)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.base_url)
    opened = context.new_page()
    try:
        yield opened
    finally:
        context.close()


def rotate(page: Page, site: Site, key_id: str, grace: str) -> str:
    """Rotates through the form with the grace labelled `grace`; the new key's secret."""
    page.goto(f"{site.base_url}/admin/api-keys/{key_id}/rotate")
    page.get_by_label(grace).check()
    page.get_by_role("button", name="Rotate key").click()
    expect(page.get_by_role("heading", name="API key rotated")).to_be_visible()
    return page.locator("#new-api-key").inner_text().strip()


def test_invitation_links_follow_the_port_the_server_was_started_on(page: Page, site: Site) -> None:
    """Item 2: no KEYPORT_PUBLIC_URL, so links start with the address `keyport serve` says."""
    sign_in(page, site, site.owner)
    page.goto(f"{site.base_url}/admin/team")
    expect(page.locator("[data-link-base-warning]")).to_have_count(0)
    page.get_by_label("Email").fill("new.person@acme.test")
    page.get_by_role("button", name="Create invitation link").click()

    link = page.locator("#invitation-link").inner_text().strip()
    assert link.startswith(f"http://localhost:{site.server.port}/admin/invite/")
    assert f"Keyport dashboard: http://localhost:{site.server.port}/admin" in site.server.output()
    shoot(page, "team-invited.png")


def test_the_invite_form_keeps_what_was_typed_and_names_each_bad_field(
    page: Page, site: Site
) -> None:
    """Item 8: every invalid field at once, beside itself, with what was typed kept."""
    sign_in(page, site, site.owner)
    page.goto(f"{site.base_url}/admin/team")
    page.get_by_label("Email").fill("not an email")
    page.get_by_label("Role", exact=True).select_option("admin")
    page.get_by_label("First name").fill("Zoë")
    page.get_by_role("button", name="Create invitation link").click()

    expect(page.locator("#invite-email-error")).to_have_text("Email must be a valid email address.")
    expect(page.get_by_label("Email")).to_have_value("not an email")
    expect(page.get_by_label("Role", exact=True)).to_have_value("admin")
    expect(page.get_by_label("First name")).to_have_value("Zoë")
    shoot(page, "team-invite-error.png")


def test_the_grace_radios_and_event_checkboxes_show_their_state(page: Page, site: Site) -> None:
    """Item 3: the inputs are visible, and the chosen one's box is marked."""
    sign_in(page, site, site.owner)
    key = create_key(page, site, "Grace shown")
    page.goto(f"{site.base_url}/admin/api-keys/{key_id_of(key)}/rotate")
    at_once, day = page.get_by_label("At once"), page.get_by_label("24 hours")
    expect(at_once).to_be_checked()
    day.check()

    expect(day).to_be_checked()
    expect(at_once).not_to_be_checked()
    for radio in (at_once, day):
        expect(radio).to_be_visible()
        expect(radio).to_have_css("opacity", "1")
    chosen = page.locator("label.option", has=day)
    expect(chosen).to_have_css("background-color", "rgb(238, 240, 255)")
    expect(page.locator("label.option", has=at_once)).to_have_css(
        "background-color", "rgb(255, 255, 255)"
    )
    shoot(page, "rotate-grace.png")

    page.goto(f"{site.base_url}/admin/webhooks")
    revoked = page.locator("input[name=events][value='api_key.revoked']")
    revoked.check()
    expect(revoked).to_be_visible()
    expect(revoked).to_have_css("opacity", "1")
    expect(page.locator("label.option", has=revoked)).to_have_css(
        "background-color", "rgb(238, 240, 255)"
    )
    shoot(page, "webhooks-events.png")


def test_a_rotated_key_says_so_and_is_not_offered_for_rotation_again(
    page: Page, site: Site
) -> None:
    """Item 7: in the list and on its page, the old key says until when it works and which
    key replaced it; no Rotate… for it; the expiry banner does not ask to rotate it."""
    sign_in(page, site, site.owner)
    old = create_key(page, site, "Billing sync", days="3")
    page.goto(f"{site.base_url}/admin/api-keys")
    expect(page.locator("[data-expiring-banner]")).to_contain_text("Billing sync")
    new = rotate(page, site, key_id_of(old), "24 hours")

    page.goto(f"{site.base_url}/admin/api-keys")
    old_row = page.locator(f"#key-{key_id_of(old)}")
    expect(old_row.locator(".status")).to_have_text("Rotated")
    expect(old_row.locator("[data-rotated]")).to_contain_text("Rotated — works until")
    expect(old_row.locator("[data-rotated]")).to_contain_text(f"replaced by {new[:49]}…")
    expect(old_row.get_by_role("link", name=re.compile("^Rotate"))).to_have_count(0)
    new_row = page.locator(f"#key-{key_id_of(new)}")
    expect(new_row.locator(".status")).to_have_text("Active")
    expect(new_row.get_by_role("link", name=re.compile("^Rotate"))).to_have_count(1)
    banner = page.locator("[data-expiring-banner]")  # the new key expires soon, the old not
    expect(banner.locator(f"a[href='/admin/api-keys/{key_id_of(new)}']")).to_have_count(1)
    expect(banner.locator(f"a[href='/admin/api-keys/{key_id_of(old)}']")).to_have_count(0)
    shoot(page, "list-rotated.png")

    page.goto(f"{site.base_url}/admin/api-keys/{key_id_of(old)}")
    expect(page.locator("h1 .status")).to_have_text("Rotated")
    expect(page.get_by_role("status")).to_contain_text("Rotated — works until")
    page.get_by_role("status").get_by_role("link", name=f"{new[:49]}…").click()
    expect(page).to_have_url(f"{site.base_url}/admin/api-keys/{key_id_of(new)}")
    page.goto(f"{site.base_url}/admin/api-keys/{key_id_of(old)}")
    expect(page.get_by_role("link", name=re.compile("^Rotate"))).to_have_count(0)
    shoot(page, "detail-rotated.png")


def _pages(site: Site) -> list[tuple[str, Callable[[Page], None]]]:
    """Every dashboard page a person can reach, by a short name, with how to open it."""
    base = site.base_url

    def at(path: str) -> Callable[[Page], None]:
        def open_it(page: Page) -> None:
            page.goto(f"{base}{path}")

        return open_it

    def key_page(suffix: str) -> Callable[[Page], None]:
        def open_it(page: Page) -> None:
            page.goto(f"{base}/admin/api-keys")
            href = page.locator("a.key-name").first.get_attribute("href")
            page.goto(f"{base}{href}{suffix}")

        return open_it

    def created(page: Page) -> None:
        create_key(page, site, "A key with a rather long name for narrow screens")

    def webhook_added(page: Page) -> None:
        page.goto(f"{base}/admin/webhooks")
        page.get_by_label("URL").fill("http://127.0.0.1:9/added")
        page.get_by_role("button", name="Add endpoint").click()
        expect(page.get_by_role("button", name="Copy secret")).to_be_visible()  # item 10

    def webhook_remove(page: Page) -> None:
        page.goto(f"{base}/admin/webhooks")
        page.get_by_role("link", name=re.compile("^Remove")).first.click()

    def team_confirm(action: str) -> Callable[[Page], None]:
        def open_it(page: Page) -> None:
            page.goto(f"{base}/admin/team")
            user_id = page.locator("tr[data-email='member@acme.test']").get_attribute("id")
            page.goto(f"{base}/admin/team/{(user_id or '')[5:]}/{action}")

        return open_it

    def invited(page: Page) -> None:
        page.goto(f"{base}/admin/team")
        page.get_by_label("Email").fill(f"fits{next(_invited)}@acme.test")
        page.get_by_role("button", name="Create invitation link").click()

    def invitation(page: Page) -> None:  # what the invitee opens, signed out
        invited(page)
        page.goto(page.locator("#invitation-link").inner_text().strip())

    return [
        ("keys", at("/admin/api-keys")),
        ("key-new", at("/admin/api-keys/new")),
        ("key-created", created),
        ("key-detail", key_page("")),
        ("key-rotate", key_page("/rotate")),
        ("key-revoke", key_page("/revoke")),
        ("audit", at("/admin/audit")),
        ("webhooks", at("/admin/webhooks")),
        ("webhook-added", webhook_added),
        ("webhook-remove", webhook_remove),
        ("team", at("/admin/team")),
        ("team-invited", invited),
        ("team-remove", team_confirm("remove")),
        ("team-transfer", team_confirm("transfer")),
        ("account", at("/admin/account")),
        ("invitation", invitation),
        ("not-found", at("/admin/api-keys/00000000-0000-4000-8000-000000000000")),
    ]


@pytest.mark.parametrize("viewport", [PHONE, LAPTOP], ids=["390px", "1280px"])
def test_every_dashboard_page_fits_the_screen(
    browser: Browser, site: Site, viewport: ViewportSize
) -> None:
    """Item 5: at 390 and 1280 px no page is wider than the screen and no button is cut off
    (the key list with every kind of row: rotated, expiring, long names)."""
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    problems: dict[str, list[str]] = {}
    try:
        page.goto(f"{site.base_url}/admin/login")
        found = page.evaluate(MEASURE)
        if found:
            problems["login"] = found
        sign_in(page, site, site.owner)
        for name, open_page in _pages(site):
            open_page(page)
            page.wait_for_load_state()
            found = page.evaluate(MEASURE)
            if found:
                problems[name] = found
            shoot(page, f"fit-{viewport['width']}-{name}.png")
    finally:
        context.close()

    assert problems == {}


def test_the_signed_in_member_pages_and_the_two_factor_pages_fit_a_phone(
    browser: Browser, site: Site
) -> None:
    """Item 5 for the pages only a member, an invitee or a new two-factor user sees; and
    item 10: the recovery codes can be copied."""
    person = Person("fits.phone@acme.test", "fits-phone-password-1")
    create_user(
        site.server.env,
        person.email,
        "Phone",
        "Person",
        role="admin",
        password=person.password,
        company_id=_acme(site),
    )
    problems: dict[str, list[str]] = {}
    for viewport in (PHONE, LAPTOP):
        context = browser.new_context(viewport=viewport)
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.base_url)
        page = context.new_page()
        try:
            sign_in(page, site, site.member)
            problems_here = page.evaluate(MEASURE)
            if problems_here:
                problems[f"forbidden-{viewport['width']}"] = problems_here
            context.clear_cookies()
            if viewport is PHONE:
                sign_in(page, site, person)
                page.goto(f"{site.base_url}/admin/account")
                page.get_by_role("button", name="Set up two-factor sign-in").click()
                secret = page.locator("#totp-secret").inner_text().strip()
                found = page.evaluate(MEASURE)
                if found:
                    problems["two-factor-setup"] = found
                shoot(page, "fit-390-two-factor-setup.png")
                page.get_by_label("Code from the app").fill(pyotp.TOTP(secret).now())
                page.get_by_role("button", name="Turn on two-factor sign-in").click()
                expect(page.locator("#recovery-codes")).to_be_visible()
                found = page.evaluate(MEASURE)
                if found:
                    problems["recovery-codes"] = found
                codes = page.locator("#recovery-codes code").all_inner_texts()
                page.get_by_role("button", name="Copy codes").click()
                assert page.evaluate("navigator.clipboard.readText()") == "\n".join(codes) + "\n"
                expect(page.get_by_role("link", name="Download as a text file")).to_be_visible()
                shoot(page, "fit-390-recovery-codes.png")
                page.get_by_role("button", name="I have saved the codes").or_(
                    page.get_by_role("link", name="I have saved the codes")
                ).click()
                page.get_by_role("button", name="Sign out").click()
                sign_in(page, site, person)  # the second step: the code page
                expect(page.get_by_label("Authentication code")).to_be_visible()
                found = page.evaluate(MEASURE)
                if found:
                    problems["sign-in-code"] = found
        finally:
            context.close()

    assert problems == {}


def _acme(site: Site) -> str:
    with sqlite3.connect(site.database) as connection:
        row = connection.execute(
            "SELECT company_id FROM users WHERE email = ?", (site.owner.email,)
        ).fetchone()
    return str(row[0])
