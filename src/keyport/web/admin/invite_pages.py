"""Accepting an invitation: /admin/invite/<token> (GET shows the form, POST accepts).

An unknown link answers the 404 page, a used or expired one the 410 page — never a form. The
link's token is a credential: these pages send no Referer anywhere, and the request log
redacts it (domain/usage.py).
"""

from __future__ import annotations

from typing import Any

from litestar import Response, get, post
from litestar.params import FromPath
from litestar.response import Redirect
from litestar.types import RouteHandlerType

from keyport.domain.errors import FieldError, FieldProblems, ValidationFailed
from keyport.domain.users import UserChanges
from keyport.services.accounts.invitations import INVITE_PATH, InvitationService, OpenInvitation
from keyport.services.accounts.passwords import validate_password
from keyport.web.admin.access import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    AnyRequest,
    DashboardAccess,
    client_ip,
    field_text,
)
from keyport.web.admin.forms import PEOPLE_FIELDS, field_messages
from keyport.web.admin.rendering import Pages

WELCOME = "/admin/account?notice=welcome"
PRIVATE = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}
Token = FromPath[str]


def invite_handlers(
    invitations: InvitationService, access: DashboardAccess, pages: Pages
) -> list[RouteHandlerType]:
    def form_page(
        request: AnyRequest,
        token: str,
        found: OpenInvitation,
        *,
        status: int = 200,
        error: str | None = None,
        given_name: str | None = None,
        family_name: str | None = None,
    ) -> Response[str]:
        login_token = access.login_token(request)
        invitee = found.user
        return pages.render(
            request,
            "invite.html",
            status=status,
            headers=PRIVATE,
            cookies=[access.cookies.make(request, LOGIN_CSRF_COOKIE, login_token)],
            login_token=login_token,
            action=f"{INVITE_PATH}{token}",
            invitee=invitee,
            company=found.company,
            error=error,
            given_name=invitee.given_name if given_name is None else given_name,
            family_name=(
                ("" if invitee.family_name == "-" else invitee.family_name)
                if family_name is None
                else family_name
            ),
        )

    @get("/invite/{token:str}", name="admin-invite")
    async def show_invitation(request: AnyRequest, token: Token) -> Response[str]:
        found = await invitations.open_invitation(token)
        return form_page(request, token, found)

    @post("/invite/{token:str}")
    async def accept_invitation(request: AnyRequest, token: Token) -> Response[Any]:
        form = await access.login_form(request)
        found = await invitations.open_invitation(token)
        password = field_text(form, "password")
        names = UserChanges(
            given_name=field_text(form, "given_name")[:200],
            family_name=field_text(form, "family_name")[:200],
        )
        try:
            # Every problem at once: names, password, and whether it was typed the same twice.
            problems = FieldProblems()
            problems.check(UserChanges.validated, names, names)
            problems.check(validate_password, password, password)
            if password != field_text(form, "confirm_password"):
                problems.errors.append(FieldError("confirm_password", "do not match"))
            problems.done()
            _, session = await invitations.accept(token, password, names, client_ip(request))
        except ValidationFailed as invalid:
            return form_page(
                request,
                token,
                found,
                status=400,
                error=" ".join(field_messages(invalid, PEOPLE_FIELDS).values()),
                given_name=names.given_name,
                family_name=names.family_name,
            )
        return Redirect(
            WELCOME,
            status_code=303,
            headers=PRIVATE,
            cookies=[access.cookies.make(request, SESSION_COOKIE, session)],
        )

    return [show_invitation, accept_invitation]
