"""The admin dashboard in a real browser against a real `keyport serve`, end to end.

Screenshots of the main pages land in test-artifacts/screenshots/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Dialog, Page, Playwright, expect, sync_playwright

from tests.e2e.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    KEY_IN_TEXT,
    Site,
    call_api,
    create_key,
    key_id_of,
    populate,
    shoot,
    sign_in,
)
from tests.support.api_calls import refused
from tests.support.server import ServerProcess, keyport_env

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("dashboard")
    database = folder / "keyport.db"
    env = keyport_env(f"sqlite:///{database}", KEYPORT_USAGE_FLUSH_INTERVAL="0.2")
    owner, admin, member, other_key_id = populate(env)
    server = ServerProcess(env, folder / "server.log").start()
    try:
        yield Site(server, database, owner, admin, member, other_key_id)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    try:
        yield launched
    finally:
        launched.close()


@pytest.fixture
def page(browser: Browser, site: Site) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.base_url)
    opened = context.new_page()
    try:
        yield opened
    finally:
        context.close()


def test_owner_signs_in_and_sees_the_company_keys(page: Page, site: Site) -> None:
    sign_in(page, site, site.owner)

    expect(page).to_have_url(f"{site.base_url}/admin/api-keys")
    expect(page.get_by_role("heading", name="API keys")).to_be_visible()
    # The key is in the table (and, expiring soon, in the banner above it too).
    keys = page.get_by_role("table")
    expect(keys.get_by_role("link", name="Staging webhook relay", exact=True)).to_be_visible()
    expect(page.get_by_text("Globex secret integration")).to_have_count(0)
    expect(page.locator(".company")).to_have_text("Acme Robotics")


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_sign_in_works_over_plain_http_on_this_machine_with_secure_cookies(
    browser: Browser, site: Site, host: str
) -> None:
    """Issue 9, item 4: cookies are Secure (and `__Host-`) by default, and Chromium keeps
    them from http://localhost and http://127.0.0.1, so signing in works there too."""
    origin = f"http://{host}:{site.server.port}"
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{origin}/admin/login")
        expect(page.get_by_text("was not loaded over HTTPS")).to_have_count(0)
        page.get_by_label("Email").fill(site.owner.email)
        page.get_by_label("Password").fill(site.owner.password)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(f"{origin}/admin/api-keys")
        expect(page.get_by_role("heading", name="API keys")).to_be_visible()
        session = [c for c in context.cookies(origin) if c["name"] == "__Host-keyport_session"]
    finally:
        context.close()

    assert len(session) == 1
    assert session[0]["secure"] and session[0]["httpOnly"]
    assert session[0]["sameSite"] == "Lax"


def test_a_new_key_is_shown_once_and_works_against_the_api(page: Page, site: Site) -> None:
    sign_in(page, site, site.admin)
    page.goto(f"{site.base_url}/admin/api-keys/new")
    page.get_by_label("Name").fill("Production CRM sync")
    shoot(page, "create-form.png")
    page.get_by_role("button", name="Create API key").click()

    expect(page.get_by_role("heading", name="API key created")).to_be_visible()
    expect(page.get_by_text("Copy this key now. It will not be shown again.")).to_be_visible()
    key = page.locator("#new-api-key").inner_text().strip()
    assert KEY_IN_TEXT.fullmatch(key)
    page.get_by_role("button", name="Copy key").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == key
    shoot(page, "shown-once.png")

    status, me = call_api(site, key)
    assert status == 200
    assert me["email"] == "owner@acme.test"


def test_the_shown_once_answer_is_marked_no_store(page: Page, site: Site) -> None:
    sign_in(page, site, site.owner)
    with page.expect_response(f"{site.base_url}/admin/api-keys") as answer:
        create_key(page, site, "Not cached")

    assert answer.value.request.method == "POST"
    assert answer.value.status == 201
    assert answer.value.headers["cache-control"] == "no-store"


def test_reloading_the_shown_once_page_never_shows_the_secret_or_makes_a_second_key(
    page: Page, site: Site
) -> None:
    sign_in(page, site, site.owner)
    key = create_key(page, site, "Reload me")

    page.reload()  # the browser sends the form again

    expect(page).to_have_url(f"{site.base_url}/admin/api-keys?notice=resubmitted")
    expect(page.get_by_role("status")).to_contain_text("no second key was created")
    assert key.split(":")[2] not in page.content()
    expect(page.locator(".key-name", has_text="Reload me")).to_have_count(1)


def test_going_back_to_the_shown_once_page_never_shows_the_secret(page: Page, site: Site) -> None:
    sign_in(page, site, site.owner)
    key = create_key(page, site, "Back button")
    page.get_by_role("link", name="I have copied the key").click()
    expect(page.get_by_role("heading", name="API keys")).to_be_visible()

    page.go_back()
    page.wait_for_load_state()

    assert key.split(":")[2] not in page.content()
    expect(page.get_by_role("heading", name="API key created")).to_have_count(0)
    page.goto(f"{site.base_url}/admin/api-keys")
    expect(page.locator(".key-name", has_text="Back button")).to_have_count(1)


def test_deactivate_and_activate_take_effect_on_the_api_at_once(page: Page, site: Site) -> None:
    sign_in(page, site, site.owner)
    key = create_key(page, site, "Toggle me")
    page.goto(f"{site.base_url}/admin/api-keys")
    row = page.locator(f"#key-{key_id_of(key)}")

    row.get_by_role("button", name="Deactivate").click()
    expect(page.get_by_role("status")).to_contain_text("API key deactivated")
    expect(page.locator(f"#key-{key_id_of(key)} .status")).to_have_text("Deactivated")
    assert call_api(site, key) == refused("API key is deactivated")

    page.locator(f"#key-{key_id_of(key)}").get_by_role("button", name="Activate").click()
    expect(page.locator(f"#key-{key_id_of(key)} .status")).to_have_text("Active")
    assert call_api(site, key)[0] == 200


def test_revoke_asks_for_confirmation_then_the_key_is_invalid(page: Page, site: Site) -> None:
    sign_in(page, site, site.owner)
    key = create_key(page, site, "Revoke me")
    page.goto(f"{site.base_url}/admin/api-keys/{key_id_of(key)}")

    page.get_by_role("link", name=re.compile("^Revoke")).click()
    expect(page.get_by_text("This is permanent and cannot be undone.")).to_be_visible()
    shoot(page, "revoke-confirm.png")
    assert call_api(site, key)[0] == 200  # nothing happens before the confirmation
    page.get_by_role("button", name="Yes, revoke this key permanently").click()

    expect(page).to_have_url(re.compile(rf"/admin/api-keys/{key_id_of(key)}\?notice=revoked$"))
    expect(page.locator("h1 .status")).to_have_text("Revoked")
    assert call_api(site, key) == refused("Invalid API key")


def test_detail_page_shows_the_facts_and_the_audit_trail(page: Page, site: Site) -> None:
    sign_in(page, site, site.admin)
    key = create_key(page, site, "Billing exporter", days="12")
    page.goto(f"{site.base_url}/admin/api-keys")
    page.locator(f"#key-{key_id_of(key)}").get_by_role("button", name="Deactivate").click()
    page.locator(f"#key-{key_id_of(key)}").get_by_role("button", name="Activate").click()
    call_api(site, key)
    page.goto(f"{site.base_url}/admin/api-keys/{key_id_of(key)}")

    expect(page.get_by_role("heading", name="Billing exporter")).to_be_visible()
    expect(page.get_by_text(key_id_of(key), exact=True)).to_be_visible()
    trail = page.locator(".trail-table tbody tr")
    expect(trail).to_have_count(3)
    expect(trail.nth(0)).to_contain_text("Activated")
    expect(trail.nth(1)).to_contain_text("Deactivated")
    expect(trail.nth(2)).to_contain_text("Created")
    expect(trail.nth(2)).to_contain_text("Ada Admin")
    expect(trail.nth(2)).to_contain_text("127.0.0.1")
    expect(page.locator("#usage .chart__svg")).to_be_visible()
    shoot(page, "detail.png")


def test_key_list_screenshot_shows_every_state(page: Page, site: Site) -> None:
    sign_in(page, site, site.owner)
    revoked = create_key(page, site, "Old mobile app")
    paused = create_key(page, site, "Partner sandbox", days="60")
    page.goto(f"{site.base_url}/admin/api-keys/{key_id_of(revoked)}/revoke")
    page.get_by_role("button", name="Yes, revoke this key permanently").click()
    page.goto(f"{site.base_url}/admin/api-keys")
    page.locator(f"#key-{key_id_of(paused)}").get_by_role("button", name="Deactivate").click()

    expect(page.locator(f"#key-{key_id_of(revoked)} .status")).to_have_text("Revoked")
    expect(page.locator(".is-expiring")).to_contain_text("Staging webhook relay")
    expect(page.locator(".is-expiring")).to_contain_text("5 days left")
    shoot(page, "list.png")
    page.set_viewport_size({"width": 390, "height": 844})
    shoot(page, "list-mobile.png")


def test_member_gets_the_403_page(page: Page, site: Site) -> None:
    sign_in(page, site, site.member)  # members land on their personal access tokens
    expect(page.get_by_role("heading", name="Personal access tokens")).to_be_visible()
    page.goto(f"{site.base_url}/admin/api-keys")

    expect(page.get_by_role("heading", name="Access denied")).to_be_visible()
    expect(page.get_by_text("Only company owners and admins can manage API keys")).to_be_visible()
    response = page.goto(f"{site.base_url}/admin/api-keys")
    assert response is not None and response.status == 403
    shoot(page, "forbidden.png")


def test_a_key_name_with_markup_renders_as_text(page: Page, site: Site) -> None:
    sign_in(page, site, site.owner)
    alerts: list[str] = []

    def dismiss(dialog: Dialog) -> None:
        alerts.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    create_key(page, site, "<script>alert(1)</script>")
    page.goto(f"{site.base_url}/admin/api-keys")

    expect(page.get_by_text("<script>alert(1)</script>", exact=True)).to_be_visible()
    assert alerts == []


def test_a_form_post_without_the_csrf_token_is_refused(page: Page, site: Site) -> None:
    sign_in(page, site, site.owner)
    page.goto(f"{site.base_url}/admin/api-keys/new")
    page.locator("form[action='/admin/api-keys'] input[name=csrf_token]").evaluate(
        "e => e.remove()"
    )
    with page.expect_response(f"{site.base_url}/admin/api-keys") as answer:
        page.get_by_role("button", name="Create API key").click()

    assert answer.value.status == 403
    expect(
        page.get_by_text("This form has expired or did not come from this dashboard.")
    ).to_be_visible()
    assert KEY_IN_TEXT.search(page.content()) is None


def test_another_companys_key_id_is_a_404(page: Page, site: Site) -> None:
    sign_in(page, site, site.owner)

    response = page.goto(f"{site.base_url}/admin/api-keys/{site.other_company_key_id}")
    assert response is not None and response.status == 404
    expect(page.get_by_text("API key not found")).to_be_visible()
    expect(page.get_by_text("Globex secret integration")).to_have_count(0)


def test_an_expiry_outside_1_to_90_days_is_refused_next_to_the_field(
    page: Page, site: Site
) -> None:
    sign_in(page, site, site.owner)
    page.goto(f"{site.base_url}/admin/api-keys/new")
    expect(page.get_by_label("Custom number of days")).to_be_hidden()  # while a preset is chosen
    page.locator("label.choice:has(#expiry-custom)").click()
    page.get_by_label("Custom number of days").fill("91")
    page.get_by_role("button", name="Create API key").click()

    expect(page.locator("#expiry-error")).to_have_text("Expiration must be between 1 and 90 days.")
    expect(page.get_by_label("Custom number of days")).to_have_value("91")
    expect(page.get_by_label("Custom number of days")).to_have_attribute("aria-invalid", "true")
    shoot(page, "create-form-error.png")


def tab_to(page: Page, selector: str, limit: int = 40) -> None:
    """Press Tab until the element matching `selector` has the focus."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"document.activeElement.matches({selector!r})"):
            return
    raise AssertionError(f"Tab never reached {selector}")


def test_the_dashboard_works_with_the_keyboard_alone(page: Page, site: Site) -> None:
    page.goto(f"{site.base_url}/admin/login")
    # The email field has the focus on arrival; wait for it, so that typing on a slow machine
    # does not start before the browser applied autofocus.
    expect(page.locator("#email")).to_be_focused()
    page.keyboard.type(site.owner.email)
    page.keyboard.press("Tab")
    expect(page.locator("#password")).to_be_focused()
    page.keyboard.type(site.owner.password)
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{site.base_url}/admin/api-keys")

    tab_to(page, "a[href='/admin/api-keys/new']")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Create API key")).to_be_visible()
    tab_to(page, "#name")
    page.keyboard.type("Keyboard key")
    page.keyboard.press("Tab")  # into the expiry choices, on the checked one (30 days)
    page.keyboard.press("ArrowRight")  # 60 days
    page.keyboard.press("Enter")

    expect(page.get_by_role("heading", name="API key created")).to_be_visible()
    expect(page.locator(".facts")).to_contain_text("60 days left")


def test_sign_out_ends_the_session(page: Page, site: Site) -> None:
    sign_in(page, site, site.owner)
    page.get_by_role("button", name="Sign out").click()

    expect(page.get_by_text("You have signed out.")).to_be_visible()
    shoot(page, "login.png")
    page.goto(f"{site.base_url}/admin/api-keys")
    expect(page).to_have_url(re.compile(r"/admin/login\?next="))


def test_no_secret_reaches_the_database_or_the_server_output(page: Page, site: Site) -> None:
    sign_in(page, site, site.owner)
    keys = [create_key(page, site, f"Leak check {n}") for n in range(2)]
    for key in keys:
        call_api(site, key)
    page.goto(f"{site.base_url}/admin/api-keys/{key_id_of(keys[0])}/revoke")
    page.get_by_role("button", name="Yes, revoke this key permanently").click()

    stored = b"".join(p.read_bytes() for p in site.database.parent.glob("keyport.db*"))
    output = site.server.output()
    for key in keys:
        secret = key.split(":")[2]
        for needle in (key, secret, secret[:20]):
            assert needle not in output
            assert needle.encode() not in stored


def test_usage_shows_on_the_key_page_and_the_list_without_breaking_the_csp(
    page: Page, site: Site
) -> None:
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text))
    sign_in(page, site, site.admin)
    key = create_key(page, site, "Usage chart")
    for _ in range(6):
        call_api(site, key)
    call_api(site, key, "/v4/user")  # 400: the user header is missing
    page.goto(f"{site.base_url}/admin/api-keys/{key_id_of(key)}")
    for _ in range(20):  # the server writes usage every 0.2 s
        if page.locator(".recent-table tbody tr").count() == 7:
            break
        page.wait_for_timeout(200)
        page.reload()

    totals = page.locator(".usage-totals dd")
    expect(totals).to_have_text(["7", "6", "1", "0", "14.3%"])
    expect(page.locator(".chart__seg--ok")).to_have_count(1)
    expect(page.locator(".chart__seg--client")).to_have_count(1)
    expect(page.locator(".recent-table tbody tr")).to_have_count(7)
    shoot(page, "usage.png")
    page.get_by_role("link", name="Per hour").click()
    expect(page.locator(".chart__bar")).to_have_count(14 * 24)
    page.goto(f"{site.base_url}/admin/api-keys")
    expect(page.locator(f"#key-{key_id_of(key)} .spark")).to_have_attribute(
        "aria-label", "7 requests in the last 14 days: see usage"
    )
    assert [v for v in violations if "Content Security Policy" in v] == []


def test_the_audit_log_lists_sign_ins_and_key_changes_and_filters_them(
    page: Page, site: Site
) -> None:
    sign_in(page, site, site.admin)
    key = create_key(page, site, "Audited in the browser")
    page.goto(f"{site.base_url}/admin/api-keys")
    page.locator(f"#key-{key_id_of(key)}").get_by_role("button", name="Deactivate").click()
    page.get_by_role("link", name="Audit log").click()

    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    first = page.locator(".audit-table tbody tr").first
    expect(first).to_contain_text("Key deactivated")
    expect(first).to_contain_text("Ada Admin")
    expect(first).to_contain_text("127.0.0.1")
    expect(page.locator(".audit-table")).to_contain_text("Signed in")
    shoot(page, "audit.png")
    page.get_by_label("API key", exact=True).select_option(label="Audited in the browser")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator(".audit-table tbody tr")).to_have_count(2)
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    exported = Path(download.value.path()).read_text()
    assert exported.count("\n") == 3 and "api_key.deactivated" in exported
