"""Per-route scopes and costs for FastAPI, on the middleware's single question:

    from keyport_client.asgi import KeyportMiddleware
    from keyport_client.fastapi import Caller, require

    app.add_middleware(KeyportMiddleware, keyport_url="http://keyport:8000")

    @app.get("/me")
    def me(caller: Caller): ...                       # any valid credential

    @app.post("/orders", dependencies=[require("orders:write", cost=5)])
    def create_order(): ...

`require(...)` returns a FastAPI dependency whose value is the `Identity`, so it can also stand
as a parameter: `caller: Identity = require("orders:write")`. The middleware finds the route a
request is about to reach (FastAPI's own route matching) and asks Keyport once, for the path's
scopes and every `require` of that route together; the dependency then only checks that the
question did cover it — a route the middleware did not ask about (no middleware, an excluded
path) fails with 500, never open.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from starlette.routing import Match

from keyport_client import asgi
from keyport_client._decision import Needs, needs
from keyport_client._models import Identity

__all__ = ["Caller", "Require", "current_identity", "require"]


def _asked(request: Request, wanted: Needs | None) -> Identity:
    state = request.scope.get("state") or {}
    identity = state.get(asgi.IDENTITY_KEY)
    asked: Needs | None = state.get(asgi.ASKED_KEY)
    if not isinstance(identity, Identity) or asked is None:
        raise RuntimeError(
            "no Keyport identity for this request: add keyport_client.asgi.KeyportMiddleware "
            "to the app, and do not exclude this route's path"
        )
    if wanted is not None and not asked.covers(wanted):
        raise RuntimeError(
            f"Keyport was not asked for {wanted}: the middleware did not find this route "
            "(is the app wrapped in something that hides its routes?)"
        )
    return identity


def current_identity(request: Request) -> Identity:
    """The dependency for "any valid credential": the middleware's identity."""
    return _asked(request, None)


Caller = Annotated[Identity, Depends(current_identity)]


class Require:
    """A dependency naming what its route needs; its value is the `Identity`."""

    def __init__(self, *scopes: str, cost: int | None = None) -> None:
        self.needs = needs(scopes, cost)

    def __call__(self, request: Request) -> Identity:
        return _asked(request, self.needs)

    def __repr__(self) -> str:
        return f"Require({', '.join(map(repr, self.needs.scopes))}, cost={self.needs.cost})"


def require(*scopes: str, cost: int | None = None) -> Any:
    """`Depends(Require(*scopes, cost=cost))`, for `dependencies=[...]` or a parameter."""
    return Depends(Require(*scopes, cost=cost))


# --- found by the middleware before the route runs ------------------------------------------

_by_route: dict[int, tuple[APIRoute, Needs | None]] = {}


def _requires(dependant: Any, seen: dict[int, Require]) -> None:
    for sub in dependant.dependencies:
        if isinstance(sub.call, Require):
            seen.setdefault(id(sub.call), sub.call)
        _requires(sub, seen)


def _needs_of(route: APIRoute) -> Needs | None:
    known = _by_route.get(id(route))
    if known is not None and known[0] is route:
        return known[1]
    seen: dict[int, Require] = {}
    _requires(route.dependant, seen)
    found: Needs | None = None
    for requirement in seen.values():
        found = requirement.needs if found is None else found + requirement.needs
    _by_route[id(route)] = (route, found)
    return found


def _find(routes: Iterable[Any], scope: asgi.Scope) -> Needs | None:
    for route in routes:
        matches = getattr(route, "matches", None)
        if matches is None:
            continue
        match, child = matches(scope)
        if match != Match.FULL:
            continue
        if isinstance(route, APIRoute):
            return _needs_of(route)
        inner: Sequence[Any] | None = getattr(route, "routes", None)  # Mount, Host
        return _find(inner, {**scope, **child}) if inner else None
    return None


def _any_needs(routes: Iterable[Any]) -> bool:
    for route in routes:
        if isinstance(route, APIRoute):
            if _needs_of(route) is not None:
                return True
        elif _any_needs(getattr(route, "routes", None) or ()):
            return True
    return False


# router → (its route count when looked at, whether any route names needs of its own)
_routers: dict[int, tuple[Any, int, bool]] = {}


def route_needs(app: Any, scope: asgi.Scope) -> Needs | None:
    """What the FastAPI route that `scope` will reach needs of its own, if any. An app none of
    whose routes uses `require` is not routed twice."""
    router = getattr(app, "router", None)
    routes = getattr(router, "routes", None)
    if not routes:
        return None
    known = _routers.get(id(router))
    if known is None or known[0] is not router or known[1] != len(routes):
        known = _routers[id(router)] = (router, len(routes), _any_needs(routes))
    return _find(routes, scope) if known[2] else None


asgi.route_needs_finders.append(route_needs)
