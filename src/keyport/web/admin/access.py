"""Who is asking: the dashboard session behind a cookie, CSRF checks, cookies, client address.

Every state-changing form carries the session's CSRF token (synchronizer token); the sign-in
form, which has no session yet, carries a token that must match a cookie (double submit).
Cookies are HttpOnly and SameSite=Lax, and Secure with the `__Host-` prefix unless the
operator turned that off (KEYPORT_SECURE_COOKIES=false): whatever Host header or scheme a
request claims, so a TLS proxy that forwards a loopback Host cannot strip it. Browsers keep
Secure cookies over https and from http://localhost and http://127.0.0.1.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from litestar import Request
from litestar.datastructures import Cookie, FormMultiDict

from keyport.services.accounts.sessions import SessionService, SignedIn
from keyport.web.client_ip import client_ip as resolved_client_ip

AnyRequest = Request[Any, Any, Any]

SESSION_COOKIE = "keyport_session"
LOGIN_CSRF_COOKIE = "keyport_login_csrf"
CSRF_FIELD = "csrf_token"
VISITOR = "keyport_visitor"  # request.state key: the signed-in user, for error pages
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


class NotSignedIn(Exception):
    """The page needs a signed-in user; answered with a redirect to the sign-in page."""

    def __init__(self, *, had_session: bool) -> None:
        super().__init__("not signed in")
        self.had_session = had_session


class TwoFactorSetupRequired(Exception):
    """The company requires two-factor sign-in of admins and this one has not set it up."""


class CsrfRefused(Exception):
    """A form post without the right CSRF token, or from another site."""


def client_ip(request: AnyRequest) -> str | None:
    # The gate's answer: the peer, or X-Forwarded-For from trusted proxies (web/client_ip.py).
    return resolved_client_ip(request.scope)


def is_local_http(request: AnyRequest) -> bool:
    return request.url.scheme == "http" and (request.url.hostname or "") in _LOCAL_HOSTS


class Cookies:
    def __init__(self, secure: bool = True) -> None:
        self._secure = secure

    def is_secure(self, request: AnyRequest) -> bool:
        return self._secure

    def is_lost_on(self, request: AnyRequest) -> bool:
        """True when a browser will not keep this page's Secure cookies: plain http elsewhere
        than on this machine, where signing in cannot work."""
        return self._secure and request.url.scheme == "http" and not is_local_http(request)

    def name(self, request: AnyRequest, base: str) -> str:
        # `__Host-` cookies must be Secure, path=/ and host-only: no subdomain can set them.
        return f"__Host-{base}" if self.is_secure(request) else base

    def read(self, request: AnyRequest, base: str) -> str | None:
        return request.cookies.get(self.name(request, base))

    def make(
        self, request: AnyRequest, base: str, value: str, *, max_age: int | None = None
    ) -> Cookie:
        return Cookie(
            key=self.name(request, base),
            value=value,
            path="/",
            max_age=max_age,
            httponly=True,
            samesite="lax",
            secure=self.is_secure(request),
        )

    def clear(self, request: AnyRequest, base: str) -> Cookie:
        return self.make(request, base, "", max_age=0)


class DashboardAccess:
    """Finds the signed-in user of a request and checks the forms it posts."""

    def __init__(self, sessions: SessionService, cookies: Cookies) -> None:
        self.sessions = sessions
        self.cookies = cookies

    async def visitor(self, request: AnyRequest, *, setting_up: bool = False) -> SignedIn:
        """The signed-in user. Unless the page is where two-factor is set up (`setting_up`),
        an owner or admin whom the company requires to use it and who has not is sent there.
        """
        token = self.cookies.read(request, SESSION_COOKIE)
        signed_in = await self.sessions.resolve(token)
        if signed_in is None:
            raise NotSignedIn(had_session=bool(token))
        request.state[VISITOR] = signed_in
        if not setting_up and must_set_up_two_factor(signed_in):
            raise TwoFactorSetupRequired()
        return signed_in

    async def form_post(
        self, request: AnyRequest, *, setting_up: bool = False
    ) -> tuple[SignedIn, FormMultiDict]:
        """The signed-in user and the posted form, once its CSRF token is right."""
        refuse_cross_site(request)
        signed_in = await self.visitor(request, setting_up=setting_up)
        form = await request.form()
        if not signed_in.csrf_matches(_field(form, CSRF_FIELD)):
            raise CsrfRefused()
        return signed_in, form

    def login_token(self, request: AnyRequest) -> str:
        """The sign-in form's token: the cookie's if it has a sane one, else a new one."""
        current = self.cookies.read(request, LOGIN_CSRF_COOKIE)
        if current and 20 <= len(current) <= 64 and current.isascii():
            return current
        return secrets.token_urlsafe(32)

    async def login_form(self, request: AnyRequest) -> FormMultiDict:
        refuse_cross_site(request)
        form = await request.form()
        expected = self.cookies.read(request, LOGIN_CSRF_COOKIE)
        submitted = _field(form, CSRF_FIELD)
        if (
            not expected
            or not submitted
            or not hmac.compare_digest(expected.encode(), submitted.encode())
        ):
            raise CsrfRefused()
        return form


def must_set_up_two_factor(signed_in: SignedIn) -> bool:
    user = signed_in.user
    return signed_in.company.require_two_factor and user.is_admin and not user.two_factor


def refuse_cross_site(request: AnyRequest) -> None:
    # Browsers say where a request comes from; a form posted from another site is refused
    # even before its token is looked at.
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise CsrfRefused()


def _field(form: FormMultiDict, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None


def field_text(form: FormMultiDict, name: str) -> str:
    return _field(form, name) or ""
