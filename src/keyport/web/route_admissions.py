"""What admits a request to each route under a guarded prefix, read from the routes' own
declarations (`opt={ADMITS: ...}`, web/gate/admission.py) when the application is built.

The application refuses to start when a route there declares nothing (`UndeclaredAdmission`).
For each request the gate asks the framework's own router which handler will answer, so that
the gate and the router can never read a path differently (case, a trailing slash): a path it
finds no route for needs any valid credential (it answers 404, reaching no handler); a method
the route does not serve (405, HEAD included) and the framework's automatic OPTIONS answer are
admitted like a read of the route: what its GET needs, else what all its handlers need.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from litestar import Litestar
from litestar.exceptions import MethodNotAllowedException, NotFoundException
from litestar.handlers import HTTPRouteHandler
from litestar.utils import normalize_path

from keyport.web.gate.admission import ADMITS, ANY_CREDENTIAL, Admission
from keyport.web.gate.reading import AdmissionOf
from keyport.web.paths import guarded_prefix


class UndeclaredAdmission(RuntimeError):
    """Routes under a guarded prefix that do not say what admits a request to them."""

    def __init__(self, routes: list[str]) -> None:
        super().__init__(
            "every route under an API prefix must declare what admits it "
            f"(opt={{'{ADMITS}': ...}}): {', '.join(sorted(routes))}"
        )


def route_admissions(app: Litestar) -> AdmissionOf:
    declared: dict[int, Admission] = {}
    undeclared: list[str] = []
    for route in app.routes:
        if guarded_prefix(route.path) is None:
            continue
        handlers = [h for h in getattr(route, "route_handlers", ()) if _is_http(h)]
        automatic = [h for h in handlers if _is_automatic_options(h)]
        by_method: dict[str, Admission] = {}
        for handler in handlers:
            if handler in automatic:
                continue
            admission = handler.opt.get(ADMITS)
            if not isinstance(admission, Admission):
                undeclared.append(f"{'/'.join(sorted(handler.http_methods))} {route.path}")
                continue
            declared[id(handler)] = admission
            by_method.update(dict.fromkeys(handler.http_methods, admission))
        for handler in automatic:
            declared[id(handler)] = _read_of(by_method)
    if undeclared:
        raise UndeclaredAdmission(undeclared)
    find = app.asgi_router.handle_routing  # the router's own lookup, cached by path and method

    def admission_of(scope: Mapping[str, Any]) -> Admission:
        path = normalize_path(scope["path"])
        try:
            handler = find(path, scope["method"])[1]
        except NotFoundException:
            return ANY_CREDENTIAL
        except MethodNotAllowedException:
            handler = find(path, "OPTIONS")[1]
        return declared[id(handler)]  # every handler under a guarded prefix: see above

    return admission_of


def _is_http(handler: Any) -> bool:
    return isinstance(handler, HTTPRouteHandler)


def _is_automatic_options(handler: HTTPRouteHandler) -> bool:
    """The OPTIONS answer the framework adds to every route (the methods it allows)."""
    return handler.http_methods == {"OPTIONS"} and handler.fn.__name__ == "options_handler"


def _read_of(by_method: Mapping[str, Admission]) -> Admission:
    """A read of a route: what its GET needs, else every scope any of its handlers needs."""
    if "GET" in by_method:
        return _without_acting_user(by_method["GET"])
    scopes: dict[str, None] = {}
    for admission in by_method.values():
        scopes.update(dict.fromkeys(admission.scopes))
    return Admission(scopes=tuple(scopes))


def _without_acting_user(admission: Admission) -> Admission:
    return Admission(admission.scopes, admission.asked_in_query, admission.signature)
