"""The /admin router: pages, static files, security headers and HTML error pages together."""

from __future__ import annotations

from typing import Any

from litestar import Response, Router, get
from litestar.datastructures import CacheControlHeader
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect
from litestar.static_files import create_static_files_router

from keyport.bootstrap import Container
from keyport.web.admin.access import Cookies, Gate
from keyport.web.admin.account_pages import account_handlers
from keyport.web.admin.audit_pages import audit_handlers
from keyport.web.admin.errors import exception_handlers
from keyport.web.admin.headers import security_headers
from keyport.web.admin.invite_pages import invite_handlers
from keyport.web.admin.key_pages import key_handlers
from keyport.web.admin.rendering import STATIC, Pages
from keyport.web.admin.signin_pages import HOME, signin_handlers
from keyport.web.admin.team_pages import team_handlers


@get("/", include_in_schema=False)
async def admin_home() -> Response[Any]:
    return Redirect(HOME, status_code=303)


@get("/{rest:path}", include_in_schema=False)
async def unknown_page(rest: FromPath[str]) -> None:
    raise NotFoundException()


def admin_router(container: Container) -> Router:
    pages = Pages()
    cookies = Cookies(container.settings.secure_cookies)
    gate = Gate(container.sessions, cookies)
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
            *signin_handlers(container.sign_in, gate, pages),
            *key_handlers(
                container.key_management, container.sessions, gate, pages, container.clock
            ),
            *audit_handlers(container.audit_log, gate, pages, container.clock),
            *team_handlers(container.team, container.invitations, gate, pages, container.clock),
            *account_handlers(container.account, container.two_factor, gate, pages),
            *invite_handlers(container.invitations, gate, pages),
            static,
            unknown_page,
        ],
        middleware=[security_headers],
        exception_handlers=exception_handlers(pages, cookies),
        include_in_schema=False,
    )
