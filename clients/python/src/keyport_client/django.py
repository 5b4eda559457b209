"""Keyport in front of a Django app, on the sync (WSGI) and the async (ASGI) stack alike:

    MIDDLEWARE = ["keyport_client.django.KeyportMiddleware", ...]   # first, or near it
    KEYPORT_URL = "http://keyport:8000"
    KEYPORT_SCOPES = {"/orders": "orders:read"}                     # optional
    KEYPORT_EXCLUDE = ["/health"]                                   # optional

Optional too: `KEYPORT_TIMEOUT` (seconds, default 2), `KEYPORT_CREDENTIAL_HEADER` (default
`Authorization`), `KEYPORT_APP_TRUSTED_PROXIES` (the app's own proxies, whose
`X-Forwarded-For` is then believed) and `KEYPORT_ON_REFUSAL` (a callable given each `Refusal`;
it may return another). An allowed request reaches the view with `request.keyport` (the
`Identity`); a refused one gets Keyport's answer exactly and never reaches a view.

A view can name scopes and a cost of its own with `@require("orders:write", cost=5)`: the
middleware resolves the URL first (Django's own resolver) and asks once, for the path's scopes
and the view's together.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from inspect import iscoroutinefunction
from typing import Any, TypeVar, cast
from urllib.parse import quote

from asgiref.sync import markcoroutinefunction
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve

from keyport_client import _environ
from keyport_client._decision import Allowed, Needs, Refusal, needs
from keyport_client._gate import DEFAULT_TIMEOUT, Gate, Incoming

__all__ = ["KeyportMiddleware", "require"]

NEEDS_ATTRIBUTE = "keyport_needs"
View = TypeVar("View", bound=Callable[..., Any])


def _gate() -> Gate:
    url = getattr(settings, "KEYPORT_URL", None)
    if not url:
        raise ImproperlyConfigured("KEYPORT_URL: set it to Keyport's address, http(s)://…")
    return Gate(
        url,
        getattr(settings, "KEYPORT_SCOPES", None),
        getattr(settings, "KEYPORT_EXCLUDE", ()),
        credential_header=getattr(settings, "KEYPORT_CREDENTIAL_HEADER", "authorization"),
        timeout=getattr(settings, "KEYPORT_TIMEOUT", DEFAULT_TIMEOUT),
        trusted_proxies=getattr(settings, "KEYPORT_APP_TRUSTED_PROXIES", ()),
        on_refusal=getattr(settings, "KEYPORT_ON_REFUSAL", None),
    )


def _response(refusal: Refusal) -> HttpResponse:
    response = HttpResponse(refusal.body, status=refusal.status)
    for name, value in refusal.headers:
        response[name] = value
    return response


def _view_needs(request: HttpRequest) -> Needs | None:
    try:
        match = resolve(request.path_info, getattr(request, "urlconf", None))
    except Resolver404:
        return None
    found: Needs | None = getattr(match.func, NEEDS_ATTRIBUTE, None)
    return found


class KeyportMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.gate = _gate()
        self._credential_key = _environ.header_key(self.gate.credential_header)
        self._async = iscoroutinefunction(get_response)
        if self._async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self._async:
            return self.__acall__(request)
        first = self._first_look(request)
        if first is None:
            return self.get_response(request)
        if isinstance(first, HttpResponse):
            return first
        return self._answer(request, self.gate.ask(*first))

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        first = self._first_look(request)
        if first is None:
            return await cast(Awaitable[HttpResponse], self.get_response(request))
        if isinstance(first, HttpResponse):
            return first
        decided = await self.gate.ask_async(*first)
        if isinstance(decided, Refusal):
            return _response(decided)
        self._admit(request, decided)
        response = await cast(Awaitable[HttpResponse], self.get_response(request))
        return self._copy_headers(response, decided)

    def _first_look(self, request: HttpRequest) -> HttpResponse | tuple[Incoming, Needs] | None:
        """A refusal of the path, None for an excluded one, else what to ask."""
        _environ.strip_spoofed(request.META)
        request.__dict__.pop("headers", None)  # read again from META, without them
        path = request.path_info
        refusal = self.gate.path_refusal(path)
        if refusal is not None:
            return _response(refusal)
        if self.gate.excluded(path):
            return None
        wanted = self.gate.needs(path, _view_needs(request))
        uri = quote(request.path).encode()
        method = request.method or ""
        return _environ.incoming(request.META, self._credential_key, method, uri), wanted

    def _answer(self, request: HttpRequest, decided: Allowed | Refusal) -> HttpResponse:
        if isinstance(decided, Refusal):
            return _response(decided)
        self._admit(request, decided)
        return self._copy_headers(self.get_response(request), decided)

    @staticmethod
    def _admit(request: HttpRequest, allowed: Allowed) -> None:
        request.keyport = allowed.identity
        request.keyport_asked = allowed.asked

    @staticmethod
    def _copy_headers(response: HttpResponse, allowed: Allowed) -> HttpResponse:
        for name, value in allowed.headers:
            response[name] = value
        return response


def _check(request: HttpRequest, wanted: Needs) -> None:
    asked: Needs | None = getattr(request, "keyport_asked", None)
    if asked is None or not asked.covers(wanted):
        raise ImproperlyConfigured(
            f"Keyport was not asked for {wanted}: add keyport_client.django.KeyportMiddleware "
            "to MIDDLEWARE, and do not exclude this view's path"
        )


def require(*scopes: str, cost: int | None = None) -> Callable[[View], View]:
    """A view decorator: the view needs these scopes (and this many credits)."""
    wanted = needs(scopes, cost)

    def decorate(view: View) -> View:
        total = getattr(view, NEEDS_ATTRIBUTE, None)
        total = wanted if total is None else total + wanted
        if iscoroutinefunction(view):

            @functools.wraps(view)
            async def checked_async(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                _check(request, total)
                return await view(request, *args, **kwargs)

            wrapper: Any = checked_async
        else:

            @functools.wraps(view)
            def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                _check(request, total)
                return view(request, *args, **kwargs)

            wrapper = checked
        setattr(wrapper, NEEDS_ATTRIBUTE, total)
        return cast(View, wrapper)

    return decorate
