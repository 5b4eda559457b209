"""The account page: every signed-in user's own password and two-factor sign-in.

Reachable even when the company requires two-factor and it is not set up yet (it is where
that is done). The secret being set up, its QR code and the recovery codes are on pages
marked no-store; the QR code is drawn here as SVG, no third party ever sees the secret.
A password or code refused by the account's sign-in limits answers 429: the same page, the
limits' message at the field, and Retry-After.
"""

from __future__ import annotations

from typing import Any

import segno
from litestar import Response, get, post
from litestar.response import Redirect
from litestar.types import RouteHandlerType

from keyport.domain.errors import FieldError, FieldProblems, ValidationFailed
from keyport.services.accounts.account import AccountService
from keyport.services.accounts.passwords import validate_password
from keyport.services.accounts.sign_in_limiter import TooManySignInAttempts
from keyport.services.accounts.two_factor import Enrollment, TwoFactorService
from keyport.web.admin.access import (
    AnyRequest,
    DashboardAccess,
    client_ip,
    field_text,
    must_set_up_two_factor,
)
from keyport.web.admin.rendering import Pages

ACCOUNT = "/admin/account"
SETUP = "/admin/account/two-factor"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
NOTICES = {
    "password-changed": "Password changed. Your other sessions have ended.",
    "two-factor-off": "Two-factor sign-in is off.",
    "two-factor-required": (
        "Your company requires two-factor sign-in for owners and admins. Set it up to continue."
    ),
    "welcome": "Welcome! You are signed in.",
}
ERRORS = {
    "current_password": "The current password {}.",
    "password": "New password {}.",
    "confirm_password": "The two new passwords {}.",
    "code": "That code {}.",
}


def _messages(error: ValidationFailed) -> dict[str, str]:
    return {e.field: ERRORS.get(e.field, "{}").format(e.message) for e in error.errors}


def _retry_after(throttled: TooManySignInAttempts) -> dict[str, str]:
    return {"Retry-After": str(throttled.retry_after)}


def qr_code(uri: str) -> str:
    """The otpauth:// URI as an SVG data URI (the CSP allows data: images, not scripts)."""
    return segno.make(uri, error="m").svg_data_uri(scale=5, border=2)


def account_handlers(
    account: AccountService, two_factor: TwoFactorService, access: DashboardAccess, pages: Pages
) -> list[RouteHandlerType]:
    async def account_page(
        request: AnyRequest,
        *,
        status: int = 200,
        errors: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response[str]:
        visitor = await access.visitor(request, setting_up=True)
        left = await two_factor.recovery_codes_left(visitor.user)
        return pages.render(
            request,
            "account.html",
            status=status,
            headers=headers,
            notice=NOTICES.get(request.query_params.get("notice") or ""),
            errors=errors or {},
            recovery_codes_left=left,
            must_set_up=must_set_up_two_factor(visitor),
        )

    def setup_page(
        request: AnyRequest,
        enrollment: Enrollment,
        *,
        status: int = 200,
        error: str = "",
        headers: dict[str, str] | None = None,
    ) -> Response[str]:
        return pages.render(
            request,
            "account_two_factor.html",
            status=status,
            secret=enrollment.secret,
            qr=qr_code(enrollment.uri),
            error=error,
            headers=NO_STORE | (headers or {}),
        )

    @get("/account", name="admin-account")
    async def show_account(request: AnyRequest) -> Response[str]:
        return await account_page(request)

    @post("/account/password")
    async def change_password(request: AnyRequest) -> Response[Any]:
        visitor, form = await access.form_post(request, setting_up=True)
        new = field_text(form, "new_password")
        try:
            # What the form alone can tell, all at once; a wrong current password after.
            problems = FieldProblems()
            problems.check(validate_password, new, new)
            if new != field_text(form, "confirm_password"):
                problems.errors.append(FieldError("confirm_password", "do not match"))
            problems.done()
            await account.change_password(
                visitor,
                field_text(form, "current_password"),
                new,
                visitor.actor(client_ip(request)),
            )
        except ValidationFailed as invalid:
            return await account_page(request, status=400, errors=_messages(invalid))
        except TooManySignInAttempts as throttled:
            return await account_page(
                request,
                status=429,
                errors={"current_password": throttled.message},
                headers=_retry_after(throttled),
            )
        return Redirect(f"{ACCOUNT}?notice=password-changed", status_code=303)

    @post("/account/two-factor/setup")
    async def begin_setup(request: AnyRequest) -> Response[Any]:
        visitor, _ = await access.form_post(request, setting_up=True)
        await two_factor.begin(visitor.user)
        return Redirect(SETUP, status_code=303)

    @get("/account/two-factor")
    async def show_setup(request: AnyRequest) -> Response[Any]:
        visitor = await access.visitor(request, setting_up=True)
        enrollment = await two_factor.pending(visitor.user)
        if enrollment is None or visitor.user.two_factor:
            return Redirect(ACCOUNT, status_code=303)
        return setup_page(request, enrollment)

    @post("/account/two-factor/confirm")
    async def confirm_setup(request: AnyRequest) -> Response[Any]:
        visitor, form = await access.form_post(request, setting_up=True)
        try:
            codes = await two_factor.confirm(
                visitor.user, field_text(form, "code"), visitor.actor(client_ip(request))
            )
        except (ValidationFailed, TooManySignInAttempts) as refused:
            enrollment = await two_factor.pending(visitor.user)
            if enrollment is None:
                return Redirect(ACCOUNT, status_code=303)
            if isinstance(refused, TooManySignInAttempts):
                return setup_page(
                    request,
                    enrollment,
                    status=429,
                    error=refused.message,
                    headers=_retry_after(refused),
                )
            return setup_page(request, enrollment, status=400, error=_messages(refused)["code"])
        # Shown once: only their digests are kept.
        return pages.render(request, "account_recovery.html", codes=codes, headers=NO_STORE)

    @post("/account/two-factor/disable")
    async def disable(request: AnyRequest) -> Response[Any]:
        visitor, form = await access.form_post(request, setting_up=True)
        try:
            await two_factor.disable(
                visitor.user, field_text(form, "code"), visitor.actor(client_ip(request))
            )
        except ValidationFailed as invalid:
            return await account_page(request, status=400, errors=_messages(invalid))
        except TooManySignInAttempts as throttled:
            return await account_page(
                request,
                status=429,
                errors={"code": throttled.message},
                headers=_retry_after(throttled),
            )
        return Redirect(f"{ACCOUNT}?notice=two-factor-off", status_code=303)

    return [show_account, change_password, begin_setup, show_setup, confirm_setup, disable]
