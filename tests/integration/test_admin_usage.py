"""Usage on the dashboard: a key's detail page and the sparklines and stale marks of the list."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest

from keyport.bootstrap import Container
from keyport.domain.audit import Actor
from keyport.domain.clock import FixedClock
from tests.conftest import Tenant
from tests.support.admin import dashboard, sign_in, text_of


@pytest.fixture
async def owner(container: Container, tenant: Tenant) -> AsyncIterator[httpx.AsyncClient]:
    async with dashboard(container) as http:
        await sign_in(http, tenant.owner.email, "owner-password-1")
        yield http


async def flush(container: Container) -> None:
    flusher = container.observability.flusher
    assert flusher is not None and await flusher.flush()


def usage_totals(page: str) -> dict[str, str]:
    found = re.search(r'<dl class="usage-totals">(.*?)</dl>', page, flags=re.S)
    assert found is not None, "no usage totals on the page"
    pairs = re.findall(r"<dt>([^<]+)</dt><dd[^>]*>([^<]+)</dd>", found.group(1))
    return dict(pairs)


def section(page: str, title_id: str) -> str:
    """The text from the element with this id to the end of its section."""
    return text_of("<h2 " + page.split(f'id="{title_id}"', 1)[1].split("</section>", 1)[0])


async def test_the_detail_page_shows_exactly_the_requests_made_split_by_status_class(
    container: Container, tenant: Tenant, client: httpx.AsyncClient, owner: httpx.AsyncClient
) -> None:
    for _ in range(9):
        assert (await client.get("/v4/user/me", headers=tenant.auth())).status_code == 200
    for _ in range(3):
        assert (await client.get("/v4/user", headers=tenant.auth())).status_code == 400
    missing = f"/v4/user/{uuid.uuid4()}"
    assert (await client.get(missing, headers=tenant.auth(tenant.owner))).status_code == 404
    before_flush = (await owner.get(f"/admin/api-keys/{tenant.key_id}")).text
    await flush(container)
    page = (await owner.get(f"/admin/api-keys/{tenant.key_id}")).text

    assert usage_totals(before_flush)["Requests"] == "0"
    assert usage_totals(page) == {
        "Requests": "13",
        "Successful": "9",
        "Client errors": "4",
        "Server errors": "0",
        "Failed": "30.8%",
    }
    assert "13 requests: 9 successful, 4 client errors, 0 server errors." in page
    recent = section(page, "recent-title")
    assert recent.startswith("Recent requests 13")
    assert f"GET {missing} 404" in recent
    assert "GET /v4/user The user header was missing 400" in recent
    assert "203.0.113.7" in recent
    facts = section(page, "facts-title")
    assert "Last used from 203.0.113.7 python-httpx/" in facts


async def test_a_request_from_a_new_ip_shows_as_unusual_on_the_detail_page(
    container: Container, tenant: Tenant, clock: FixedClock, owner: httpx.AsyncClient
) -> None:
    async with dashboard(container, client_ip="198.51.100.1") as usual:
        for _ in range(3):
            await usual.get("/v4/user/me", headers=tenant.auth())
    await flush(container)
    calm = (await owner.get(f"/admin/api-keys/{tenant.key_id}")).text
    clock.advance(timedelta(days=2))
    async with dashboard(container, client_ip="192.0.2.66") as stranger:
        await stranger.get("/v4/user/me", headers=tenant.auth())
    await flush(container)
    async with dashboard(container) as http:  # two days later: sign in again
        await sign_in(http, tenant.owner.email, "owner-password-1")
        page = (await http.get(f"/admin/api-keys/{tenant.key_id}")).text

    assert "Unusual activity" not in calm
    alerts = section(page, "alerts-title")
    assert alerts.startswith("Unusual activity in the last 24 hours New IP address 192.0.2.66")
    assert "An address this key had never been used from before; 1 request since." in alerts
    addresses = section(page, "seen-1")
    assert addresses.startswith("IP addresses 2")
    assert re.search(r"192\.0\.2\.66 New First seen .* 198\.51\.100\.1 First seen", addresses)


async def test_the_chart_has_a_bar_per_day_or_per_hour_of_the_last_14_days(
    container: Container, tenant: Tenant, client: httpx.AsyncClient, owner: httpx.AsyncClient
) -> None:
    await client.get("/v4/user/me", headers=tenant.auth())
    await flush(container)
    by_day = (await owner.get(f"/admin/api-keys/{tenant.key_id}")).text
    by_hour = (await owner.get(f"/admin/api-keys/{tenant.key_id}?chart=hours")).text

    assert by_day.count('class="chart__bar"') == 14
    assert by_hour.count('class="chart__bar"') == 14 * 24
    assert by_day.count("chart__seg chart__seg--ok") == 1
    assert re.search(r"<title>[^<]*: 1 successful</title>", by_day)
    assert 'href="?chart=hours#usage" aria-current="true"' in by_hour


async def test_the_key_list_shows_14_days_of_requests_and_marks_stale_keys(
    container: Container, tenant: Tenant, clock: FixedClock, client: httpx.AsyncClient
) -> None:
    idle = await container.keys.issue_key(
        tenant.company_id, name="Idle", days=90, actor=Actor.cli()
    )
    paused = await container.keys.issue_key(
        tenant.company_id, name="Paused", days=90, actor=Actor.cli()
    )
    await container.keys.deactivate_key(tenant.company_id, paused.record.id, Actor.cli())
    clock.advance(timedelta(days=31))
    fresh = await container.keys.issue_key(
        tenant.company_id, name="Fresh", days=30, actor=Actor.cli()
    )
    for _ in range(4):
        await client.get("/v4/user/me", headers={"Authorization": f"Bearer {fresh.key}"})
    await flush(container)
    async with dashboard(container) as http:
        await sign_in(http, tenant.owner.email, "owner-password-1")
        page = (await http.get("/admin/api-keys")).text

    def row(key_id: str) -> str:
        found = re.search(rf'<tr [^>]*id="key-{key_id}".*?</tr>', page, flags=re.S)
        assert found is not None
        return found.group(0)

    assert "Stale" in text_of(row(idle.record.id))
    assert "Stale" not in text_of(row(paused.record.id))  # deactivated: already dealt with
    assert "Stale" not in text_of(row(fresh.record.id))
    assert 'aria-label="4 requests in the last 14 days: see usage"' in row(fresh.record.id)
    assert 'aria-label="0 requests in the last 14 days: see usage"' in row(idle.record.id)
    assert row(fresh.record.id).count("<rect") == 14


async def test_usage_pages_have_no_inline_script_or_style(
    container: Container, tenant: Tenant, client: httpx.AsyncClient, owner: httpx.AsyncClient
) -> None:
    await client.get("/v4/user", headers={**tenant.auth(), "User-Agent": '<script>x</script>"'})
    await flush(container)
    pages = [
        (await owner.get(f"/admin/api-keys/{tenant.key_id}")).text,
        (await owner.get(f"/admin/api-keys/{tenant.key_id}?chart=hours")).text,
        (await owner.get("/admin/api-keys")).text,
    ]

    for page in pages:
        assert re.findall(r"<script[^>]*>", page) == [
            re.search(r'<script src="/admin/static/admin\.js\?v=[0-9a-f]+" defer>', page).group(0)  # type: ignore[union-attr]
        ]
        assert " style=" not in page and "<style" not in page
    assert "&lt;script&gt;x&lt;/script&gt;&#34;" in pages[0]
