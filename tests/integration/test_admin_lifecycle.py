"""Dashboard parts of the key lifecycle: Rotate with a grace, the expiry banner, webhooks."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx

from keyport.bootstrap import Container
from keyport.domain.audit import Actor
from keyport.domain.clock import FixedClock
from tests.conftest import Tenant, make_tenant
from tests.support.admin import KEY_IN_TEXT, dashboard, shown_key, sign_in, text_of

OWNER_PASSWORD = "owner-password-1"
SECRET_IN_TEXT = re.compile(r"whsec_[A-Za-z0-9+/=]{40,}")


async def call_me(client: httpx.AsyncClient, key: str) -> int:
    answer = await client.get("/v4/user/me", headers={"Authorization": f"Bearer {key}"})
    return answer.status_code


async def test_rotate_from_the_dashboard_with_a_grace_shows_the_new_key_once(
    container: Container, tenant: Tenant, clock: FixedClock
) -> None:
    async with dashboard(container) as http:
        csrf = await sign_in(http, tenant.owner.email, OWNER_PASSWORD)
        detail = await http.get(f"/admin/api-keys/{tenant.key_id}")
        assert f"/admin/api-keys/{tenant.key_id}/rotate" in detail.text
        form = await http.get(f"/admin/api-keys/{tenant.key_id}/rotate")
        assert re.findall(r'name="grace" value="(\d+)"', form.text) == [
            "0",
            "3600",
            "86400",
            "604800",
        ]
        rotated = await http.post(
            f"/admin/api-keys/{tenant.key_id}/rotate", data={"csrf_token": csrf, "grace": "3600"}
        )
        assert rotated.status_code == 201
        assert rotated.headers["cache-control"] == "no-store"
        new_key = shown_key(rotated)
        assert new_key != tenant.key
        assert "API key rotated" in text_of(rotated.text)
        assert "keeps working until" in text_of(rotated.text)

        # The new key is never shown again.
        listing = await http.get("/admin/api-keys")
        assert listing.status_code == 200 and KEY_IN_TEXT.search(listing.text) is None
        bad = await http.post(
            f"/admin/api-keys/{new_key.split(':')[1]}/rotate",
            data={"csrf_token": csrf, "grace": "5"},
        )
        assert bad.status_code == 400

        assert await call_me(http, tenant.key) == 200
        assert await call_me(http, new_key) == 200
        clock.advance(timedelta(hours=1))
        assert await call_me(http, tenant.key) == 401
        assert await call_me(http, new_key) == 200


async def test_rotating_at_once_ends_the_old_key_and_members_may_not(
    container: Container, tenant: Tenant
) -> None:
    async with dashboard(container) as http:
        csrf = await sign_in(http, tenant.member.email, "member-password-1")
        refused = await http.post(
            f"/admin/api-keys/{tenant.key_id}/rotate", data={"csrf_token": csrf, "grace": "0"}
        )
        assert refused.status_code == 403
    async with dashboard(container) as http:
        csrf = await sign_in(http, tenant.owner.email, OWNER_PASSWORD)
        rotated = await http.post(
            f"/admin/api-keys/{tenant.key_id}/rotate", data={"csrf_token": csrf, "grace": "0"}
        )
        assert rotated.status_code == 201
        assert "no longer works" in text_of(rotated.text)
        assert await call_me(http, tenant.key) == 401


async def test_the_key_list_names_keys_expiring_within_seven_days(
    container: Container, tenant: Tenant
) -> None:
    soon = await container.keys.issue_key(
        tenant.company_id, name="Nightly export", days=3, actor=Actor.cli()
    )
    async with dashboard(container) as http:
        await sign_in(http, tenant.owner.email, OWNER_PASSWORD)
        page = await http.get("/admin/api-keys")
    banner = re.search(r"<div[^>]*data-expiring-banner.*?</div>\s*</div>", page.text, re.S)
    assert banner is not None
    words = text_of(banner.group(0))
    assert "1 key expires within 7 days." in words
    assert "Nightly export" in words and soon.record.id in banner.group(0)
    assert "Test key" not in words  # 30 days left


async def test_the_webhooks_page_adds_lists_logs_retries_and_removes(hooks: Container) -> None:
    tenant = await make_tenant(hooks, "Acme")
    async with dashboard(hooks) as http:
        csrf = await sign_in(http, tenant.owner.email, OWNER_PASSWORD)
        assert (await http.get("/admin/webhooks")).status_code == 200
        bad = await http.post(
            "/admin/webhooks", data={"csrf_token": csrf, "url": "ftp://nope.test/"}
        )
        assert bad.status_code == 400
        assert "must be an absolute http or https URL" in text_of(bad.text)
        added = await http.post(
            "/admin/webhooks",
            data={
                "csrf_token": csrf,
                "url": "http://127.0.0.1:9/hook",
                "events": ["api_key.revoked"],
            },
        )
        assert added.status_code == 201
        assert added.headers["cache-control"] == "no-store"
        found = SECRET_IN_TEXT.search(added.text)
        assert found is not None
        page = await http.get("/admin/webhooks")
        assert "http://127.0.0.1:9/hook" in page.text and "api_key.revoked" in page.text
        assert found.group(0) not in page.text

        await hooks.keys.revoke_key(tenant.company_id, tenant.key_id, Actor.cli())
        await hooks.deliverer.deliver_due()  # port 9 refuses: a failed attempt
        log = await http.get("/admin/webhooks")
        row = re.search(r'<tr id="delivery-(\d+)">(.*?)</tr>', log.text, re.S)
        assert row is not None
        cells = text_of(row.group(2))
        assert cells.startswith("Key revoked") and " pending 1 " in f" {cells} "
        retried = await http.post(
            f"/admin/webhooks/deliveries/{row.group(1)}/retry", data={"csrf_token": csrf}
        )
        assert retried.status_code == 303
        endpoint_id = re.search(r'<tr id="endpoint-([0-9a-f-]+)">', page.text)
        assert endpoint_id is not None
        confirm = await http.get(f"/admin/webhooks/{endpoint_id.group(1)}/remove")
        assert confirm.status_code == 200
        assert "Remove this webhook endpoint?" in text_of(confirm.text)
        assert f'id="endpoint-{endpoint_id.group(1)}"' in (await http.get("/admin/webhooks")).text
        removed = await http.post(
            f"/admin/webhooks/{endpoint_id.group(1)}/remove", data={"csrf_token": csrf}
        )
        assert removed.status_code == 303
        after = (await http.get("/admin/webhooks")).text
        assert f'id="endpoint-{endpoint_id.group(1)}"' not in after
        assert "endpoint removed" in text_of(after)  # the log keeps the given-up delivery
    async with dashboard(hooks) as http:
        await sign_in(http, tenant.member.email, "member-password-1")
        assert (await http.get("/admin/webhooks")).status_code == 403
