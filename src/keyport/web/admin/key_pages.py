"""The API key pages: list, create (the key shown once), detail, and lifecycle buttons.

Each handler parses, calls one KeyManagement use case and renders. The acting user, and so the
company, always comes from the session, never from the URL or the form.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Response, get, post
from litestar.params import FromPath, QueryParameter
from litestar.response import Redirect
from litestar.types import RouteHandlerType

from keyport.domain import keys as key_rules
from keyport.domain.audit import Actor
from keyport.domain.clock import Clock
from keyport.domain.errors import FieldProblems, ValidationFailed
from keyport.domain.keys import ApiKey
from keyport.domain.users import User
from keyport.services.accounts.sessions import SessionService
from keyport.services.keys.dashboard import KeyManagement, require_key_manager
from keyport.web.admin.access import AnyRequest, DashboardAccess, client_ip, field_text
from keyport.web.admin.charts import sparkline
from keyport.web.admin.forms import (
    PRESET_DAYS,
    CreateKeyForm,
    field_messages,
    listed,
    rate_limit_of,
    scopes_of,
)
from keyport.web.admin.rendering import Pages
from keyport.web.admin.usage_views import BY_DAY, BY_HOUR, usage_view
from keyport.web.admin.view_models import key_view, trail_entry, zone_of

LIST = "/admin/api-keys"
PAGE_SIZE = 50
NOTICES = {
    "deactivated": "API key deactivated. Requests with it are refused until you activate it.",
    "activated": "API key activated. It works again right away.",
    "revoked": "API key revoked. It can never be used again.",
    "restricted": "Scopes, allowed networks and rate limit saved. They apply to the next request.",
    "resubmitted": (
        "That form was already sent, so no second key was created. A key is "
        "shown only once: create a new one if you did not copy it."
    ),
}
Page = Annotated[int, QueryParameter(ge=1, le=100_000)]
KeyId = FromPath[str]
Change = Callable[[User, str, Actor], Awaitable[ApiKey]]


# The grace choices of the Rotate form: how long the old key keeps working.
GRACE_CHOICES = (
    (0, "At once"),
    (3600, "1 hour"),
    (86400, "24 hours"),
    (604800, "7 days"),
)
EXPIRING_SOON = timedelta(days=7)


def _grace_of(text: str) -> int:
    allowed = {str(seconds): seconds for seconds, _ in GRACE_CHOICES}
    if text not in allowed:
        raise ValidationFailed.single("grace", "choose one of the offered grace periods")
    return allowed[text]


def _after_change(key_id: str, notice: str, back_to: str) -> Redirect:
    target = f"{LIST}/{key_id}" if back_to == "detail" else LIST
    query = {"notice": notice} if back_to == "detail" else {"notice": notice, "key": key_id}
    return Redirect(f"{target}?{urlencode(query)}", status_code=303)


def key_handlers(
    management: KeyManagement,
    sessions: SessionService,
    access: DashboardAccess,
    pages: Pages,
    clock: Clock,
    default_rate_limit: int = 0,
) -> list[RouteHandlerType]:
    """`default_rate_limit`: KEYPORT_RATE_LIMIT, what a key without its own limit gets."""

    @get("/api-keys", name="admin-keys")
    async def list_keys(request: AnyRequest, page: Page = 1) -> Response[str]:
        visitor = await access.visitor(request)
        now, zone = clock.now(), zone_of(visitor.user)
        listing = await management.list_keys(
            visitor.user, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE, zone=zone
        )
        notice_key = request.query_params.get("key")
        expiring = await management.expiring_soon(visitor.user, EXPIRING_SOON)
        return pages.render(
            request,
            "keys.html",
            page=page,
            page_size=PAGE_SIZE,
            total=listing.total,
            keys=[
                key_view(k, now, zone, listing.creators, listing.replaced_by.get(k.id))
                for k in listing.keys
            ],
            sparklines={k: sparkline(days) for k, days in listing.daily_usage.items()},
            notice=NOTICES.get(request.query_params.get("notice") or ""),
            notice_key=notice_key,
            expiring=[key_view(k, now, zone, {}) for k in expiring],
        )

    @get("/api-keys/new")
    async def new_key(request: AnyRequest) -> Response[str]:
        require_key_manager((await access.visitor(request)).user)
        return pages.render(
            request,
            "key_new.html",
            form=CreateKeyForm(),
            presets=PRESET_DAYS,
            default_rate_limit=default_rate_limit,
        )

    @post("/api-keys")
    async def create_key(request: AnyRequest) -> Response[Any]:
        visitor, posted = await access.form_post(request)
        require_key_manager(visitor.user)
        form = CreateKeyForm.posted(posted)
        if not await sessions.claim_form(visitor, form.nonce):
            return Redirect(f"{LIST}?notice=resubmitted", status_code=303)
        try:
            issued = await management.issue_key(
                visitor.user,
                visitor.actor(client_ip(request)),
                name=form.name,
                days=form.days,
                scopes=scopes_of(form.scopes),
                allowed_ips=listed(form.allowed_ips),
                rate_limit=rate_limit_of(form.rate_limit),
            )
        except ValidationFailed as invalid:
            return pages.render(
                request,
                "key_new.html",
                status=400,
                form=form.with_errors(invalid),
                presets=PRESET_DAYS,
                default_rate_limit=default_rate_limit,
            )
        # The secret is in this response only: never in a URL, a session, a log or a cache.
        view = key_view(issued.record, clock.now(), zone_of(visitor.user), {})
        return pages.render(
            request,
            "key_created.html",
            status=201,
            key=view,
            secret=issued.key,
            base_url=str(request.base_url).rstrip("/"),
            headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
        )

    async def render_detail(
        request: AnyRequest, key_id: str, *, status: int = 200, **form: Any
    ) -> Response[str]:
        visitor = await access.visitor(request)
        now, zone = clock.now(), zone_of(visitor.user)
        detail = await management.key_detail(visitor.user, key_id, zone)
        creators = {detail.creator.id: detail.creator} if detail.creator else {}
        by = BY_HOUR if request.query_params.get("chart") == BY_HOUR else BY_DAY
        return pages.render(
            request,
            "key_detail.html",
            status=status,
            key=key_view(detail.key, now, zone, creators, detail.replaced_by),
            usage=usage_view(detail.usage, detail.key, zone, by),
            trail=[trail_entry(e, zone, detail.trail.people) for e in detail.trail.events],
            trail_total=detail.trail.total,
            notice=NOTICES.get(request.query_params.get("notice") or ""),
            restrictions=form,
            default_rate_limit=default_rate_limit,
        )

    @get("/api-keys/{key_id:str}")
    async def key_detail(request: AnyRequest, key_id: KeyId) -> Response[str]:
        return await render_detail(request, key_id)

    @post("/api-keys/{key_id:str}/restrictions", name="admin-key-restrictions")
    async def set_restrictions(request: AnyRequest, key_id: KeyId) -> Response[Any]:
        """Scopes, the IP allowlist and the rate limit together, as the detail page's form
        sends them."""
        visitor, form = await access.form_post(request)
        actor = visitor.actor(client_ip(request))
        typed = {name: field_text(form, name) for name in ("scopes", "allowed_ips", "rate_limit")}
        try:
            # All checked before any is saved: a form is saved whole or not at all.
            problems = FieldProblems()
            nothing: tuple[str, ...] = ()
            scopes = problems.check(key_rules.validate_scopes, scopes_of(typed["scopes"]), nothing)
            networks = problems.check(
                key_rules.validate_allowed_ips, listed(typed["allowed_ips"]), nothing
            )
            limit = problems.check(
                key_rules.validate_rate_limit, rate_limit_of(typed["rate_limit"]), None
            )
            problems.done()
            current = await management.get_key(visitor.user, key_id)
            if scopes != current.scopes:
                await management.set_scopes(visitor.user, current.id, list(scopes), actor)
            if networks != current.allowed_ips:
                await management.set_allowed_ips(visitor.user, current.id, list(networks), actor)
            if limit != current.rate_limit:
                await management.set_rate_limit(visitor.user, current.id, limit, actor)
        except ValidationFailed as invalid:
            return await render_detail(
                request, key_id, status=400, **typed, errors=field_messages(invalid)
            )
        return _after_change(key_id, "restricted", "detail")

    @get("/api-keys/{key_id:str}/revoke")
    async def confirm_revoke(request: AnyRequest, key_id: KeyId) -> Response[str]:
        visitor = await access.visitor(request)
        key = await management.get_key(visitor.user, key_id)
        view = key_view(key, clock.now(), zone_of(visitor.user), {})
        back_to = "detail" if request.query_params.get("from") == "detail" else "list"
        return pages.render(request, "key_revoke.html", key=view, back_to=back_to)

    @get("/api-keys/{key_id:str}/rotate")
    async def confirm_rotate(request: AnyRequest, key_id: KeyId) -> Response[str]:
        visitor = await access.visitor(request)
        key = await management.get_key(visitor.user, key_id)
        view = key_view(key, clock.now(), zone_of(visitor.user), {})
        return pages.render(request, "key_rotate.html", key=view, graces=GRACE_CHOICES, error=None)

    @post("/api-keys/{key_id:str}/rotate")
    async def rotate_key(request: AnyRequest, key_id: KeyId) -> Response[Any]:
        visitor, form = await access.form_post(request)
        try:
            grace = _grace_of(field_text(form, "grace"))
        except ValidationFailed:
            key = await management.get_key(visitor.user, key_id)
            view = key_view(key, clock.now(), zone_of(visitor.user), {})
            error = "Choose one of the grace periods offered."
            return pages.render(
                request, "key_rotate.html", status=400, key=view, graces=GRACE_CHOICES, error=error
            )
        rotated = await management.rotate_key(
            visitor.user, key_id, visitor.actor(client_ip(request)), grace_period_seconds=grace
        )
        zone = zone_of(visitor.user)
        # The new secret is in this response only, as at creation.
        return pages.render(
            request,
            "key_created.html",
            status=201,
            key=key_view(rotated.issued.record, clock.now(), zone, {}),
            secret=rotated.issued.key,
            previous=key_view(rotated.previous, clock.now(), zone, {}),
            base_url=str(request.base_url).rstrip("/"),
            headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
        )

    def change(path: str, notice: str, use_case: Change) -> RouteHandlerType:
        @post(path, name=f"admin-key-{notice}")
        async def change_key(request: AnyRequest, key_id: KeyId) -> Response[Any]:
            visitor, form = await access.form_post(request)
            changed = await use_case(visitor.user, key_id, visitor.actor(client_ip(request)))
            return _after_change(changed.id, notice, field_text(form, "back_to"))

        return change_key

    return [
        list_keys,
        new_key,
        create_key,
        key_detail,
        set_restrictions,
        confirm_revoke,
        confirm_rotate,
        rotate_key,
        change("/api-keys/{key_id:str}/deactivate", "deactivated", management.deactivate_key),
        change("/api-keys/{key_id:str}/activate", "activated", management.activate_key),
        change("/api-keys/{key_id:str}/revoke", "revoked", management.revoke_key),
    ]
