"""The route template that answered a request (`/v4/user/{user_id}`), for metrics and logs.

Read from the framework's public route table once, at start: the handler Litestar chose is in
the scope as `route_handler`, and each route lists its handlers with its path template. The
raw path can never be a label (unbounded); the template is bounded by the routes we declare.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from litestar import Litestar

RouteOf = Callable[[Mapping[str, Any]], str | None]


def route_labels(app: Litestar) -> RouteOf:
    templates: dict[int, set[str]] = {}
    for route in app.routes:
        handlers = getattr(route, "route_handlers", None) or [getattr(route, "route_handler", None)]
        for handler in handlers:
            templates.setdefault(id(handler), set()).add(route.path_format)

    def route_of(scope: Mapping[str, Any]) -> str | None:
        handler = scope.get("route_handler")
        found = templates.get(id(handler)) if handler is not None else None
        if not found:
            return None
        if len(found) == 1:
            return next(iter(found))
        path: str = scope["path"]  # one handler at several paths: the one asked for
        return path if path in found else min(found)

    return route_of
