"""The /admin router: pages, static files, security headers and HTML error pages together."""

from __future__ import annotations

from typing import Any

from litestar import Response, Router, get
from litestar.datastructures import CacheControlHeader
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect
from litestar.static_files import create_static_files_router

from keyport.domain.clock import Clock
from keyport.services.accounts.account import AccountService
from keyport.services.accounts.invitations import InvitationService
from keyport.services.accounts.sessions import SessionService
from keyport.services.accounts.signin import SignInService
from keyport.services.accounts.team import TeamService
from keyport.services.accounts.two_factor import TwoFactorService
from keyport.services.audit.company_log import AuditLog
from keyport.services.keys.dashboard import KeyManagement
from keyport.services.keys.personal_tokens import PersonalTokenService
from keyport.services.webhooks.endpoints import WebhookService
from keyport.web.admin.access import Cookies, DashboardAccess
from keyport.web.admin.account_pages import account_handlers
from keyport.web.admin.audit_pages import audit_handlers
from keyport.web.admin.errors import exception_handlers
from keyport.web.admin.headers import security_headers
from keyport.web.admin.invite_pages import invite_handlers
from keyport.web.admin.key_pages import key_handlers
from keyport.web.admin.rendering import STATIC, Pages
from keyport.web.admin.signin_pages import HOME, signin_handlers
from keyport.web.admin.team_pages import team_handlers
from keyport.web.admin.token_pages import token_handlers
from keyport.web.admin.webhook_pages import webhook_handlers


@get("/", include_in_schema=False)
async def admin_home() -> Response[Any]:
    return Redirect(HOME, status_code=303)


@get("/{rest:path}", include_in_schema=False)
async def unknown_page(rest: FromPath[str]) -> None:
    raise NotFoundException()


def admin_router(
    *,
    secure_cookies: bool,  # KEYPORT_SECURE_COOKIES: Secure unless turned off for plain HTTP
    sessions: SessionService,
    sign_in: SignInService,
    key_management: KeyManagement,
    audit_log: AuditLog,
    team: TeamService,
    invitations: InvitationService,
    account: AccountService,
    two_factor: TwoFactorService,
    webhooks: WebhookService,
    tokens: PersonalTokenService,
    clock: Clock,
    default_rate_limit: int = 0,  # KEYPORT_RATE_LIMIT: requests a minute of a key without its own
) -> Router:
    pages = Pages()
    cookies = Cookies(secure_cookies)
    access = DashboardAccess(sessions, cookies)
    static = create_static_files_router(
        path="/static",
        directories=[STATIC],
        include_in_schema=False,
        cache_control=CacheControlHeader(public=True, max_age=86400),
    )
    return Router(
        path="/admin",
        route_handlers=[
            admin_home,
            *signin_handlers(sign_in, access, pages),
            *key_handlers(key_management, sessions, access, pages, clock, default_rate_limit),
            *audit_handlers(audit_log, access, pages, clock),
            *team_handlers(team, invitations, access, pages, clock),
            *account_handlers(account, two_factor, access, pages),
            *invite_handlers(invitations, access, pages),
            *webhook_handlers(webhooks, access, pages),
            *token_handlers(tokens, sessions, access, pages, clock),
            static,
            unknown_page,
        ],
        middleware=[security_headers],
        exception_handlers=exception_handlers(pages, cookies),
        include_in_schema=False,
    )
