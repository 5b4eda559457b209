"""/admin/tokens: every signed-in user's personal access tokens — create (the token shown
once), list, regenerate, revoke, and the notice of a token someone else revoked; owners and
admins also see and revoke the team's tokens, and owners set the company's token policy.

The acting user, and so the company, always comes from the session, never from the form.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from typing import Any
from urllib.parse import urlencode

from litestar import Response, get, post
from litestar.datastructures import FormMultiDict
from litestar.params import FromPath
from litestar.response import Redirect
from litestar.types import RouteHandlerType

from keyport.domain.clock import Clock
from keyport.domain.errors import KeyportError, PermissionDenied, ValidationFailed
from keyport.domain.personal_tokens import EXPIRY_PRESETS, IssuedToken, TokenState
from keyport.domain.scopes import describe as describe_scopes
from keyport.domain.users import Role
from keyport.services.accounts.sessions import SessionService, SignedIn
from keyport.services.keys.personal_tokens import PersonalTokenService, TokenView
from keyport.web.admin.access import AnyRequest, DashboardAccess, client_ip, field_text
from keyport.web.admin.forms import listed, scopes_of
from keyport.web.admin.rendering import Pages
from keyport.web.admin.view_models import Moment, moment, time_left, zone_of

HOME = "/admin/tokens"
NOTICES = {
    "revoked": "Personal access token revoked. It can never be used again.",
    "policy": "Token policy saved. It applies to the next request.",
    "dismissed": "Notice dismissed.",
    "resubmitted": (
        "That form was already sent, so no second token was created. A token is shown "
        "only once: create a new one if you did not copy it."
    ),
}
NO_EXPIRY, ON_DATE = "none", "date"
DEFAULT_EXPIRY = "30"
_FIELDS = {"expiresInDays": "expiry", "name": "name", "scopes": "scopes"}


@dataclass(frozen=True, slots=True)
class TokenForm:
    name: str = ""
    expiry: str = DEFAULT_EXPIRY  # a preset, "date" or "none"
    on_date: str = ""  # YYYY-MM-DD, for "date"
    scopes: str = ""  # empty: every scope but keys:manage
    nonce: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def posted(cls, form: FormMultiDict) -> TokenForm:
        return cls(
            name=field_text(form, "name")[:1000],
            expiry=field_text(form, "expiry")[:20],
            on_date=field_text(form, "on_date")[:20],
            scopes=field_text(form, "scopes")[:10_000],
            nonce=field_text(form, "nonce"),
        )

    def days(self, today: date) -> int | None:
        """Days asked for (None: no expiry); the service decides whether that is allowed."""
        if self.expiry == NO_EXPIRY:
            return None
        if self.expiry == ON_DATE:
            try:
                chosen = date.fromisoformat(self.on_date.strip())
            except ValueError:
                raise ValidationFailed.single("expiresInDays", "needs a date") from None
            if chosen <= today:
                raise ValidationFailed.single("expiresInDays", "must be a date after today")
            return (chosen - today).days
        if self.expiry not in {str(d) for d in EXPIRY_PRESETS}:
            raise ValidationFailed.single("expiresInDays", "choose one of the offered lifetimes")
        return int(self.expiry)

    def with_errors(self, error: ValidationFailed) -> TokenForm:
        return self.with_messages({_FIELDS.get(e.field, e.field): e.message for e in error.errors})

    def with_messages(self, errors: dict[str, str]) -> TokenForm:
        """The same answers with a fresh nonce and each message next to its field."""
        return TokenForm(self.name, self.expiry, self.on_date, self.scopes, errors=errors)


@dataclass(frozen=True, slots=True)
class TokenRow:
    id: str
    name: str
    hint: str
    scopes: str
    status: str
    owner: str
    created: Moment
    expires: Moment | None
    time_left: str
    last_used: Moment | None
    last_used_ip: str | None
    live: bool


def _row(view: TokenView, now: datetime, zone: tzinfo) -> TokenRow:
    token = view.token
    ends = token.expires_at
    return TokenRow(
        id=token.id,
        name=token.name,
        hint=token.hint,
        scopes=describe_scopes(token.scopes),
        status=view.state.label,
        owner=view.owner_label,
        created=moment(token.created_at, zone),
        expires=moment(ends, zone) if ends else None,
        time_left=time_left(ends, now) if ends else "Never expires",
        last_used=moment(token.last_used_at, zone) if token.last_used_at else None,
        last_used_ip=token.last_used_ip,
        live=token.revoked_at is None and (ends is None or ends > now),
    )


def _today(now: datetime, zone: tzinfo) -> date:
    return now.astimezone(zone).date()


def token_handlers(
    tokens: PersonalTokenService,
    sessions: SessionService,
    access: DashboardAccess,
    pages: Pages,
    clock: Clock,
) -> list[RouteHandlerType]:
    async def render(
        request: AnyRequest, visitor: SignedIn, *, status: int = 200, **extra: Any
    ) -> Response[str]:
        user, now, zone = visitor.user, clock.now(), zone_of(visitor.user)
        policy = await tokens.policy(user.company_id)
        team = await tokens.team(user) if user.is_admin else []
        longer = []
        if user.role is Role.OWNER and policy.max_days:
            limit = now.timestamp() + policy.max_days * 86400
            longer = [
                _row(v, now, zone)
                for v in team
                if v.token.expires_at is None or v.token.expires_at.timestamp() > limit
            ]
        return pages.render(
            request,
            "tokens.html",
            status=status,
            tokens=[_row(v, now, zone) for v in await tokens.own(user)],
            team=[_row(v, now, zone) for v in team],
            revoked_notices=await tokens.notices(user),
            policy=policy,
            longer=longer,
            is_owner=user.role is Role.OWNER,
            presets=EXPIRY_PRESETS,
            today=_today(now, zone).isoformat(),
            notice=NOTICES.get(request.query_params.get("notice") or ""),
            base_url=str(request.base_url).rstrip("/"),
            **({"form": TokenForm(), "issued": None, "policy_error": None} | extra),
        )

    async def shown_once(
        request: AnyRequest, visitor: SignedIn, issued: IssuedToken
    ) -> Response[str]:
        """The page with the new token: in this response only, never stored or cached."""
        now, zone = clock.now(), zone_of(visitor.user)
        view = _row(TokenView(issued.record, TokenState.ACTIVE), now, zone)
        shown = await render(
            request, visitor, status=201, issued={"token": issued.token, "row": view}
        )
        shown.headers.update({"Cache-Control": "no-store", "Pragma": "no-cache"})
        return shown

    @get("/tokens", name="admin-tokens")
    async def token_page(request: AnyRequest) -> Response[str]:
        return await render(request, await access.visitor(request))

    @post("/tokens")
    async def create_token(request: AnyRequest) -> Response[Any]:
        visitor, posted = await access.form_post(request)
        form = TokenForm.posted(posted)
        if not await sessions.claim_form(visitor, form.nonce):
            return Redirect(f"{HOME}?notice=resubmitted", status_code=303)
        try:
            issued = await tokens.issue(
                visitor.user,
                name=form.name,
                days=form.days(_today(clock.now(), zone_of(visitor.user))),
                scopes=scopes_of(form.scopes),
                actor=visitor.actor(client_ip(request)),
            )
        except ValidationFailed as invalid:
            return await render(request, visitor, status=400, form=form.with_errors(invalid))
        except KeyportError as refused:  # the company turned tokens off
            errors = {"form": refused.message}
            return await render(request, visitor, status=400, form=form.with_messages(errors))
        return await shown_once(request, visitor, issued)

    @post("/tokens/{token_id:str}/regenerate")
    async def regenerate_token(request: AnyRequest, token_id: FromPath[str]) -> Response[Any]:
        visitor, _ = await access.form_post(request)
        issued = await tokens.regenerate(visitor.user, token_id, visitor.actor(client_ip(request)))
        return await shown_once(request, visitor, issued)

    @post("/tokens/{token_id:str}/revoke")
    async def revoke_token(request: AnyRequest, token_id: FromPath[str]) -> Response[Any]:
        visitor, _ = await access.form_post(request)
        await tokens.revoke(visitor.user, token_id, visitor.actor(client_ip(request)))
        return Redirect(f"{HOME}?{urlencode({'notice': 'revoked'})}", status_code=303)

    @post("/tokens/notices/dismiss")
    async def dismiss_notices(request: AnyRequest) -> Response[Any]:
        visitor, _ = await access.form_post(request)
        await tokens.dismiss_notices(visitor.user)
        return Redirect(f"{HOME}?{urlencode({'notice': 'dismissed'})}", status_code=303)

    @post("/tokens/policy")
    async def set_policy(request: AnyRequest) -> Response[Any]:
        visitor, form = await access.form_post(request)
        if visitor.user.role is not Role.OWNER:
            raise PermissionDenied("Only the company owner can set the token policy")
        max_days = field_text(form, "max_days").strip()
        try:
            if max_days and not (max_days.isascii() and max_days.isdigit()):
                raise ValidationFailed.single("maxDays", "must be a whole number of days")
            await tokens.set_policy(
                visitor.user.company_id,
                visitor.actor(client_ip(request)),
                allow=field_text(form, "allow") == "on",
                max_days=int(max_days) if max_days else None,
                allowed_ips=listed(field_text(form, "allowed_ips")[:10_000]),
            )
        except ValidationFailed as invalid:
            message = "; ".join(e.message for e in invalid.errors)
            return await render(request, visitor, status=400, policy_error=message)
        return Redirect(f"{HOME}?{urlencode({'notice': 'policy'})}", status_code=303)

    return [
        token_page,
        create_token,
        regenerate_token,
        revoke_token,
        dismiss_notices,
        set_policy,
    ]
