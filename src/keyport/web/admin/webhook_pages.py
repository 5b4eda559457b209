"""/admin/webhooks: a company's webhook endpoints (add, list, remove; the secret shown once)
and the delivery log with a "retry now" button. Owners and admins only."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from litestar import Response, get, post
from litestar.params import FromPath
from litestar.response import Redirect
from litestar.types import RouteHandlerType

from keyport.domain.errors import ValidationFailed
from keyport.domain.webhooks import EventType
from keyport.services.accounts.sessions import SignedIn
from keyport.services.keys.dashboard import require_key_manager
from keyport.services.webhooks.endpoints import WebhookService
from keyport.web.admin.access import AnyRequest, DashboardAccess, client_ip, field_text
from keyport.web.admin.forms import field_messages
from keyport.web.admin.rendering import Pages
from keyport.web.admin.view_models import moment, zone_of
from keyport.web.admin.words import EVENT_WORDS

HOME = "/admin/webhooks"
NOTICES = {
    "removed": "Webhook endpoint removed. Nothing more is sent to it.",
    "retry": "The delivery is sent again within a few seconds.",
}
EVENT_TYPES = [(t.value, EVENT_WORDS[t]) for t in EventType]


def webhook_handlers(
    webhooks: WebhookService, access: DashboardAccess, pages: Pages
) -> list[RouteHandlerType]:
    async def render(
        request: AnyRequest, visitor: SignedIn, *, status: int = 200, **extra: Any
    ) -> Response[str]:
        company_id = visitor.user.company_id
        zone = zone_of(visitor.user)
        endpoints = await webhooks.list_endpoints(company_id)
        deliveries = await webhooks.deliveries(company_id)
        return pages.render(
            request,
            "webhooks.html",
            status=status,
            endpoints=[
                {
                    "endpoint": e,
                    "created": moment(e.created_at, zone),
                    "disabled": moment(e.disabled_at, zone) if e.disabled_at else None,
                }
                for e in endpoints
            ],
            deliveries=[
                {
                    "delivery": d,
                    "created": moment(d.created_at, zone),
                    "next": moment(d.next_attempt_at, zone) if d.next_attempt_at else None,
                }
                for d in deliveries
            ],
            event_types=EVENT_TYPES,
            event_words=EVENT_WORDS,
            notice=NOTICES.get(request.query_params.get("notice") or ""),
            **({"secret": None, "added": None, "errors": {}, "url": "", "chosen": []} | extra),
        )

    @get("/webhooks", name="admin-webhooks")
    async def webhook_page(request: AnyRequest) -> Response[str]:
        visitor = await access.visitor(request)
        require_key_manager(visitor.user)
        return await render(request, visitor)

    @post("/webhooks")
    async def add_webhook(request: AnyRequest) -> Response[Any]:
        visitor, form = await access.form_post(request)
        require_key_manager(visitor.user)
        url = field_text(form, "url")
        chosen = [t for t in form.getall("events", []) if isinstance(t, str)]
        try:
            added = await webhooks.add_endpoint(
                visitor.user.company_id, url, chosen, visitor.actor(client_ip(request))
            )
        except ValidationFailed as invalid:
            errors = field_messages(invalid)
            return await render(request, visitor, status=400, errors=errors, url=url, chosen=chosen)
        # The signing secret is in this response only, like a new key.
        response = await render(
            request, visitor, status=201, secret=added.secret, added=added.endpoint
        )
        response.headers.update({"Cache-Control": "no-store", "Pragma": "no-cache"})
        return response

    @get("/webhooks/{endpoint_id:str}/remove")
    async def confirm_remove(request: AnyRequest, endpoint_id: FromPath[str]) -> Response[str]:
        visitor = await access.visitor(request)
        require_key_manager(visitor.user)
        endpoint = await webhooks.get_endpoint(visitor.user.company_id, endpoint_id)
        return pages.render(request, "webhook_remove.html", endpoint=endpoint)

    @post("/webhooks/{endpoint_id:str}/remove")
    async def remove_webhook(request: AnyRequest, endpoint_id: FromPath[str]) -> Response[Any]:
        visitor, _ = await access.form_post(request)
        require_key_manager(visitor.user)
        await webhooks.remove_endpoint(
            visitor.user.company_id, endpoint_id, visitor.actor(client_ip(request))
        )
        return Redirect(f"{HOME}?{urlencode({'notice': 'removed'})}", status_code=303)

    @post("/webhooks/deliveries/{delivery_id:int}/retry")
    async def retry_delivery(request: AnyRequest, delivery_id: FromPath[int]) -> Response[Any]:
        visitor, _ = await access.form_post(request)
        require_key_manager(visitor.user)
        await webhooks.retry_now(visitor.user.company_id, delivery_id)
        return Redirect(f"{HOME}?{urlencode({'notice': 'retry'})}", status_code=303)

    return [webhook_page, add_webhook, confirm_remove, remove_webhook, retry_delivery]
