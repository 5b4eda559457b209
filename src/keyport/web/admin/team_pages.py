"""The team page: who is in the company, invitations, roles, ownership, removal, the 2FA rule.

Owners and admins only (members get the 403 page). Each handler parses, calls one TeamService
or InvitationService use case and renders; the rules live in domain/team.py.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from litestar import Response, get, post
from litestar.params import FromPath
from litestar.response import Redirect
from litestar.types import RouteHandlerType

from keyport.domain.clock import Clock
from keyport.domain.errors import Conflict, FieldProblems, RateLimited, ValidationFailed
from keyport.domain.team import INVITATION_LIFETIME, parse_assignable_role
from keyport.domain.users import Role
from keyport.services.accounts.invitations import InvitationService, Invitee
from keyport.services.accounts.team import TeamService
from keyport.services.accounts.users import require_admin
from keyport.web.admin.access import AnyRequest, DashboardAccess, client_ip, field_text
from keyport.web.admin.forms import PEOPLE_FIELDS, field_messages
from keyport.web.admin.link_base import looks_elsewhere
from keyport.web.admin.rendering import Pages
from keyport.web.admin.view_models import moment, zone_of

TEAM = "/admin/team"
NOTICES = {
    "role": "Role changed. It applies from their next page.",
    "removed": "Removed. Their sessions have ended and they can no longer sign in.",
    "transferred": "Ownership transferred. You are now an admin.",
    "required": "Owners and admins must now sign in with two-factor authentication.",
    "optional": "Two-factor sign-in is now optional.",
}
UserId = FromPath[str]
TOO_MANY_INVITATIONS = (
    "You have sent too many invitations in the last hour. Please wait a while and try again."
)


def _back(notice: str) -> Redirect:
    return Redirect(f"{TEAM}?{urlencode({'notice': notice})}", status_code=303)


def team_handlers(
    team: TeamService,
    invitations: InvitationService,
    access: DashboardAccess,
    pages: Pages,
    clock: Clock,
) -> list[RouteHandlerType]:
    async def team_page(
        request: AnyRequest,
        *,
        status: int = 200,
        invite_form: dict[str, str] | None = None,
        invite_errors: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response[str]:
        visitor = await access.visitor(request)
        members = await team.list_team(visitor.user)
        zone = zone_of(visitor.user)
        return pages.render(
            request,
            "team.html",
            status=status,
            headers=headers,
            members=members,
            last_sign_in={
                m.id: moment(m.last_sign_in_at, zone) for m in members if m.last_sign_in_at
            },
            is_owner=visitor.user.role is Role.OWNER,
            notice=NOTICES.get(request.query_params.get("notice") or ""),
            invite_form=invite_form or {},
            invite_errors=invite_errors or {},
            link_base=invitations.link_base,
            link_base_looks_wrong=looks_elsewhere(invitations.link_base, request),
        )

    @get("/team", name="admin-team")
    async def show_team(request: AnyRequest) -> Response[str]:
        return await team_page(request)

    @post("/team/invite")
    async def invite(request: AnyRequest) -> Response[Any]:
        visitor, form = await access.form_post(request)
        require_admin(visitor.user)
        typed = {
            "email": field_text(form, "email")[:320],
            "role": field_text(form, "role")[:20],
            "given_name": field_text(form, "given_name")[:200],
            "family_name": field_text(form, "family_name")[:200],
        }
        try:
            problems = FieldProblems()
            role = problems.check(parse_assignable_role, typed["role"], Role.MEMBER)
            invitee = Invitee(typed["email"], role, typed["given_name"], typed["family_name"])
            problems.check(lambda who: who.as_new_user().validated(), invitee, None)
            problems.done()
            issued = await invitations.invite(
                visitor.user, invitee, visitor.actor(client_ip(request))
            )
        except ValidationFailed as invalid:
            errors = field_messages(invalid, PEOPLE_FIELDS)
            return await team_page(request, status=400, invite_form=typed, invite_errors=errors)
        except Conflict as taken:  # the email is someone's already
            errors = {"email": f"{taken.message}."}
            return await team_page(request, status=409, invite_form=typed, invite_errors=errors)
        except RateLimited as limited:  # each invitation may tell whether an email is taken
            return await team_page(
                request,
                status=429,
                invite_form=typed,
                invite_errors={"email": TOO_MANY_INVITATIONS},
                headers={"Retry-After": str(limited.retry_after)},
            )
        # The link is in this response only: never stored, logged or shown again.
        return pages.render(
            request,
            "team_invited.html",
            status=201,
            invited=issued.user,
            link=issued.url,
            expires=moment(clock.now() + INVITATION_LIFETIME, zone_of(visitor.user)),
            headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
        )

    @post("/team/{user_id:str}/role")
    async def change_role(request: AnyRequest, user_id: UserId) -> Response[Any]:
        visitor, form = await access.form_post(request)
        role = parse_assignable_role(field_text(form, "role")[:20])
        await team.change_role(visitor.user, user_id, role, visitor.actor(client_ip(request)))
        return _back("role")

    def confirmation(action: str) -> RouteHandlerType:
        @get(f"/team/{{user_id:str}}/{action}", name=f"admin-team-confirm-{action}")
        async def confirm(request: AnyRequest, user_id: UserId) -> Response[str]:
            visitor = await access.visitor(request)
            target = await team.member(visitor.user, user_id)
            return pages.render(request, "team_confirm.html", target=target, action=action)

        return confirm

    @post("/team/{user_id:str}/remove")
    async def remove(request: AnyRequest, user_id: UserId) -> Response[Any]:
        visitor, _ = await access.form_post(request)
        await team.remove(visitor.user, user_id, visitor.actor(client_ip(request)))
        return _back("removed")

    @post("/team/{user_id:str}/transfer")
    async def transfer(request: AnyRequest, user_id: UserId) -> Response[Any]:
        visitor, _ = await access.form_post(request)
        await team.transfer_ownership(visitor.user, user_id, visitor.actor(client_ip(request)))
        return _back("transferred")

    @post("/team/two-factor")
    async def require_two_factor(request: AnyRequest) -> Response[Any]:
        visitor, form = await access.form_post(request)
        required = field_text(form, "required") == "on"
        await team.require_two_factor(visitor.user, required, visitor.actor(client_ip(request)))
        return _back("required" if required else "optional")

    return [
        show_team,
        invite,
        change_role,
        confirmation("remove"),
        confirmation("transfer"),
        remove,
        transfer,
        require_two_factor,
    ]
