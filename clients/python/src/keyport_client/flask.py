"""Keyport in front of a Flask app:

    from keyport_client.flask import Keyport

    keyport = Keyport(app, "http://keyport:8000", scopes={"/orders": "orders:read"},
                      exclude=["/health"])

    @app.post("/orders")
    @keyport.require("orders:write", cost=5)
    def create_order(): ...

Every request is asked of Keyport once, before any other `before_request` function runs; an
allowed one reaches the view with `flask.g.keyport` (the `Identity`), a refused one gets
Keyport's answer exactly and never reaches a view. `require` names scopes and a cost of the
view's own: Flask has matched the URL before the question, so they ride on the same single
question (written above `@app.route` too: the first request then swaps the checked view in).
`Keyport()` without an app and then
`init_app(app)` reads `KEYPORT_URL`, `KEYPORT_SCOPES`, `KEYPORT_EXCLUDE`, `KEYPORT_TIMEOUT`,
`KEYPORT_CREDENTIAL_HEADER` and `KEYPORT_APP_TRUSTED_PROXIES` from `app.config` for whatever
was not given.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from inspect import iscoroutinefunction
from typing import Any, TypeVar, cast

from flask import Flask, Response, current_app, g, request

from keyport_client import _environ
from keyport_client._decision import Needs, Refusal, needs
from keyport_client._gate import DEFAULT_TIMEOUT, Gate, RefusalHook

__all__ = ["Keyport", "require"]

NEEDS_ATTRIBUTE = "keyport_needs"
_EXTENSION = "keyport"
View = TypeVar("View", bound=Callable[..., Any])
# view → its checking wrapper, for a decorator written above `@app.route` (Flask registered
# the bare view): the first request to it swaps the wrapper in.
_wrapper_of: weakref.WeakKeyDictionary[Callable[..., Any], Callable[..., Any]]
_wrapper_of = weakref.WeakKeyDictionary()


def _response(refusal: Refusal) -> Response:
    return Response(refusal.body, status=refusal.status, headers=refusal.headers)


def _check(wanted: Needs) -> None:
    asked: Needs | None = g.get("keyport_asked")
    if asked is None or not asked.covers(wanted):
        raise RuntimeError(
            f"Keyport was not asked for {wanted}: set up keyport_client.flask.Keyport on this "
            "app, and do not exclude this view's path"
        )


def require(*scopes: str, cost: int | None = None) -> Callable[[View], View]:
    """A view decorator: the view needs these scopes (and this many credits)."""
    wanted = needs(scopes, cost)

    def decorate(view: View) -> View:
        total = getattr(view, NEEDS_ATTRIBUTE, None)
        total = wanted if total is None else total + wanted
        if iscoroutinefunction(view):

            @functools.wraps(view)
            async def checked_async(*args: Any, **kwargs: Any) -> Any:
                _check(total)
                return await view(*args, **kwargs)

            wrapper: Any = checked_async
        else:

            @functools.wraps(view)
            def checked(*args: Any, **kwargs: Any) -> Any:
                _check(total)
                return view(*args, **kwargs)

            wrapper = checked
        setattr(wrapper, NEEDS_ATTRIBUTE, total)
        _wrapper_of[view] = wrapper
        return cast(View, wrapper)

    return decorate


class Keyport:
    """The extension: one per app (or one for several apps, through `init_app`)."""

    require = staticmethod(require)

    def __init__(
        self,
        app: Flask | None = None,
        keyport_url: str | None = None,
        scopes: Mapping[str, str | Sequence[str]] | None = None,
        exclude: Iterable[str] | None = None,
        *,
        credential_header: str | None = None,
        timeout: float | None = None,
        trusted_proxies: Iterable[str] | str | None = None,
        on_refusal: RefusalHook | None = None,
    ) -> None:
        self._options: dict[str, Any] = {
            "KEYPORT_URL": keyport_url,
            "KEYPORT_SCOPES": scopes,
            "KEYPORT_EXCLUDE": exclude,
            "KEYPORT_CREDENTIAL_HEADER": credential_header,
            "KEYPORT_TIMEOUT": timeout,
            "KEYPORT_APP_TRUSTED_PROXIES": trusted_proxies,
        }
        self._on_refusal = on_refusal
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        def setting(name: str, default: Any) -> Any:
            given = self._options[name]
            return given if given is not None else app.config.get(name, default)

        url = setting("KEYPORT_URL", None)
        if not url:
            raise RuntimeError("Keyport: give keyport_url, or set KEYPORT_URL in app.config")
        app.extensions[_EXTENSION] = Gate(
            url,
            setting("KEYPORT_SCOPES", None),
            setting("KEYPORT_EXCLUDE", ()),
            credential_header=setting("KEYPORT_CREDENTIAL_HEADER", "authorization"),
            timeout=setting("KEYPORT_TIMEOUT", DEFAULT_TIMEOUT),
            trusted_proxies=setting("KEYPORT_APP_TRUSTED_PROXIES", ()),
            on_refusal=self._on_refusal,
        )
        # First of all `before_request` functions: no app code runs before the question.
        app.before_request_funcs.setdefault(None, []).insert(0, _before_request)
        app.after_request(_after_request)


def _before_request() -> Response | None:
    gate: Gate = current_app.extensions[_EXTENSION]
    environ = request.environ
    _environ.strip_spoofed(environ)
    path = _environ.path_of(environ)
    refusal = gate.path_refusal(path)
    if refusal is not None:
        return _response(refusal)
    if gate.excluded(path):
        return None
    view = _view(request.endpoint)
    wanted = gate.needs(path, getattr(view, NEEDS_ATTRIBUTE, None))
    credential_key = _environ.header_key(gate.credential_header)
    decided = gate.ask(_environ.incoming(environ, credential_key, request.method), wanted)
    if isinstance(decided, Refusal):
        return _response(decided)
    g.keyport = decided.identity
    g.keyport_asked = decided.asked
    g.keyport_headers = decided.headers
    return None


def _view(endpoint: str | None) -> Callable[..., Any] | None:
    if endpoint is None:
        return None
    view = current_app.view_functions.get(endpoint)
    if view is not None and view in _wrapper_of:
        while view in _wrapper_of:
            view = _wrapper_of[view]
        current_app.view_functions[endpoint] = view
    return view


def _after_request(response: Response) -> Response:
    for name, value in g.get("keyport_headers", ()):
        response.headers[name] = value
    return response
