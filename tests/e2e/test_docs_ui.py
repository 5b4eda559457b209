"""`/schema` in a real browser with the network cut off: Keyport serves everything the API
docs need, under a Content-Security-Policy that the page keeps (no violation, no inline
script), and the page may not be framed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Route, expect, sync_playwright

from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS, shoot
from tests.support.server import ServerProcess, keyport_env

pytestmark = pytest.mark.browser
OPERATIONS = [
    ("GET", "/v4/user/me"),
    ("GET", "/v4/user"),
    ("POST", "/v4/user"),
    ("GET", "/v4/user/{user_id}"),
    ("PATCH", "/v4/user/{user_id}"),
    ("DELETE", "/v4/user/{user_id}"),
    ("GET", "/v1/authorize"),
    ("GET", "/v1/keys"),
    ("POST", "/v1/keys"),
    ("POST", "/v1/keys/self/rotate"),
    ("GET", "/v1/keys/{key_id}"),
    ("PATCH", "/v1/keys/{key_id}"),
    ("POST", "/v1/keys/{key_id}/deactivate"),
    ("POST", "/v1/keys/{key_id}/activate"),
    ("POST", "/v1/keys/{key_id}/revoke"),
    ("POST", "/v1/keys/{key_id}/rotate"),
    ("GET", "/v1/tokens"),
    ("GET", "/v1/tokens/{token_id}"),
    ("POST", "/v1/tokens/{token_id}/revoke"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("docs")
    env = keyport_env(f"sqlite:///{folder / 'keyport.db'}", KEYPORT_REQUEST_LOG="false")
    served = ServerProcess(env, folder / "server.log").start()
    try:
        yield served
    finally:
        served.stop()


def test_the_docs_page_is_sent_with_a_strict_policy_and_may_not_be_framed(
    server: ServerProcess,
) -> None:
    page = httpx.get(f"{server.base_url}/schema", timeout=10)
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert page.headers["x-frame-options"] == "DENY"
    assert "<script>" not in page.text  # only <script src=...> of this origin
    assert "http://" not in page.text and "https://" not in page.text
    bundle = httpx.get(f"{server.base_url}/schema/assets/swagger-ui-bundle.js", timeout=10)
    assert bundle.status_code == 200
    assert bundle.headers["content-type"].startswith("text/javascript")
    assert bundle.headers["x-frame-options"] == "DENY"
    assert httpx.get(f"{server.base_url}/schema/assets/nope.js", timeout=10).status_code == 404


def test_the_docs_render_every_operation_with_the_network_cut_off(server: ServerProcess) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    ours = urlsplit(server.base_url).netloc
    elsewhere: list[str] = []
    violations: list[str] = []

    def only_keyport(route: Route) -> None:
        if urlsplit(route.request.url).netloc == ours:
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort("internetdisconnected")

    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.route("**/*", only_keyport)
            page = context.new_page()
            page.on(
                "console",
                lambda message: (
                    violations.append(message.text)
                    if "Content Security Policy" in message.text
                    else None
                ),
            )
            page.goto(f"{server.base_url}/schema")
            expect(page.locator(".opblock").first).to_be_visible(timeout=30_000)
            for method, path in OPERATIONS:
                block = page.locator(f".opblock-{method.lower()}:has([data-path='{path}'])").first
                expect(block).to_be_visible()
            assert page.locator(".opblock").count() == len(OPERATIONS)
            expect(page.get_by_text("Keyport API").first).to_be_visible()
            page.get_by_role("button", name="Authorize").first.wait_for()
            shoot(page, "api-docs.png")
        finally:
            browser.close()
    assert elsewhere == []  # nothing was fetched from anywhere but Keyport
    assert violations == []  # and the page kept its Content-Security-Policy
