"""Sign-in and sign-out: /admin/login (GET, POST) and /admin/logout (POST)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from litestar import Response, get, post
from litestar.response import Redirect
from litestar.types import RouteHandlerType

from keyport.services.accounts.sign_in_limiter import TooManySignInAttempts
from keyport.services.accounts.signin import (
    CHALLENGE_SECONDS,
    ChallengeOver,
    SignInRefused,
    SignInService,
    WrongSecondFactor,
)
from keyport.web.admin.access import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    AnyRequest,
    DashboardAccess,
    client_ip,
    field_text,
)
from keyport.web.admin.rendering import Pages

HOME = "/admin/api-keys"
MEMBER_HOME = "/admin/tokens"  # members manage no keys: they land on their own tokens
NOTICES = {
    "signed-out": "You have signed out.",
    "expired": "Your session has ended. Please sign in again.",
    "code-expired": "Your sign-in took too long. Please sign in again.",
}
LOGIN_PATH = "/admin/login"
CODE_PATH = "/admin/login/code"
CHALLENGE_COOKIE = "keyport_sign_in_challenge"
_SAFE_NEXT = re.compile(r"/admin/[A-Za-z0-9/_-]*\Z")


def safe_next(target: str | None) -> str:
    """Only a dashboard path may follow sign-in: never another site (no open redirect)."""
    if target and _SAFE_NEXT.match(target) and not target.startswith("/admin/login"):
        return target
    return HOME


def signin_handlers(
    sign_in: SignInService, access: DashboardAccess, pages: Pages
) -> list[RouteHandlerType]:
    def login_page(
        request: AnyRequest,
        *,
        status: int = 200,
        email: str = "",
        error: str | None = None,
        next_path: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response[str]:
        token = access.login_token(request)
        notice = NOTICES.get(request.query_params.get("notice") or "") if status == 200 else None
        return pages.render(
            request,
            "login.html",
            status=status,
            headers=headers,
            cookies=[access.cookies.make(request, LOGIN_CSRF_COOKIE, token)],
            login_token=token,
            email=email,
            error=error,
            notice=notice,
            next_path=safe_next(next_path or request.query_params.get("next")),
            needs_https=access.cookies.is_lost_on(request),
        )

    @get("/login", name="admin-login")
    async def show_login(request: AnyRequest) -> Response[Any]:
        if await access.sessions.resolve(access.cookies.read(request, SESSION_COOKIE)):
            return Redirect(safe_next(request.query_params.get("next")), status_code=303)
        return login_page(request)

    @post("/login")
    async def submit_login(request: AnyRequest) -> Response[Any]:
        form = await access.login_form(request)
        email, next_path = field_text(form, "email"), field_text(form, "next")
        try:
            step = await sign_in.sign_in(email, field_text(form, "password"), client_ip(request))
        except SignInRefused as refused:
            return login_page(
                request, status=400, email=email, error=refused.message, next_path=next_path
            )
        except TooManySignInAttempts as throttled:
            return login_page(
                request,
                status=429,
                email=email,
                error=throttled.message,
                next_path=next_path,
                headers={"Retry-After": str(throttled.retry_after)},
            )
        if step.challenge is not None:
            return Redirect(
                f"{CODE_PATH}?{urlencode({'next': safe_next(next_path)})}",
                status_code=303,
                cookies=[
                    access.cookies.make(
                        request, CHALLENGE_COOKIE, step.challenge, max_age=CHALLENGE_SECONDS
                    )
                ],
            )
        return await signed_in_at(request, safe_next(next_path), step.session_token or "")

    async def signed_in_at(request: AnyRequest, target: str, token: str) -> Response[Any]:
        if target == HOME:
            signed_in = await access.sessions.resolve(token)
            if signed_in is not None and not signed_in.user.is_admin:
                target = MEMBER_HOME
        return Redirect(
            target,
            status_code=303,
            cookies=[
                access.cookies.make(request, SESSION_COOKIE, token),
                access.cookies.clear(request, CHALLENGE_COOKIE),
            ],
        )

    def code_page(
        request: AnyRequest, *, status: int = 200, error: str | None = None
    ) -> Response[str]:
        token = access.login_token(request)
        return pages.render(
            request,
            "login_code.html",
            status=status,
            cookies=[access.cookies.make(request, LOGIN_CSRF_COOKIE, token)],
            login_token=token,
            error=error,
            next_path=safe_next(request.query_params.get("next")),
        )

    @get("/login/code", name="admin-login-code")
    async def show_code(request: AnyRequest) -> Response[Any]:
        if not access.cookies.read(request, CHALLENGE_COOKIE):
            return Redirect(LOGIN_PATH, status_code=303)
        return code_page(request)

    @post("/login/code")
    async def submit_code(request: AnyRequest) -> Response[Any]:
        form = await access.login_form(request)
        challenge = access.cookies.read(request, CHALLENGE_COOKIE) or ""
        next_path = safe_next(field_text(form, "next"))
        try:
            token = await sign_in.complete(challenge, field_text(form, "code"), client_ip(request))
        except ChallengeOver:
            return Redirect(f"{LOGIN_PATH}?notice=code-expired", status_code=303)
        except WrongSecondFactor as wrong:
            return code_page(request, status=400, error=wrong.message)
        except TooManySignInAttempts as throttled:
            response = code_page(request, status=429, error=throttled.message)
            response.headers["Retry-After"] = str(throttled.retry_after)
            return response
        return await signed_in_at(request, next_path, token)

    @post("/logout")
    async def logout(request: AnyRequest) -> Response[Any]:
        signed_in, _ = await access.form_post(request, setting_up=True)
        await sign_in.sign_out(signed_in, client_ip(request))
        return Redirect(
            "/admin/login?notice=signed-out",
            status_code=303,
            cookies=[access.cookies.clear(request, SESSION_COOKIE)],
        )

    return [show_login, submit_login, show_code, submit_code, logout]
