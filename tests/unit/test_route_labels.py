"""Metrics' route label comes from the framework's public route table, not its private scope."""

from __future__ import annotations

from litestar import Litestar, Router, get
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath
from litestar.routes import HTTPRoute

from keyport.web.route_labels import route_labels


@get("/{user_id:str}")
async def one_user(user_id: FromPath[str]) -> str:
    return user_id


@get(["/a", "/b"])
async def two_paths() -> str:
    return "x"


def _app() -> Litestar:
    return Litestar([Router("/v4/user", route_handlers=[one_user]), two_paths], openapi_config=None)


def _handler(app: Litestar, name: str) -> HTTPRouteHandler:
    routes = [r for r in app.routes if isinstance(r, HTTPRoute)]
    return next(h for r in routes for h in r.route_handlers if h.handler_name == name)


def test_a_handler_is_labelled_with_its_route_template() -> None:
    app = _app()
    route_of = route_labels(app)
    handler = _handler(app, "one_user")
    assert route_of({"route_handler": handler, "path": "/v4/user/42"}) == "/v4/user/{user_id}"


def test_a_handler_at_several_paths_is_labelled_with_the_one_asked_for() -> None:
    app = _app()
    route_of = route_labels(app)
    handler = _handler(app, "two_paths")
    assert route_of({"route_handler": handler, "path": "/b"}) == "/b"
    assert route_of({"route_handler": handler, "path": "/a"}) == "/a"


def test_an_unrouted_request_has_no_label() -> None:
    assert route_labels(_app())({"path": "/nowhere"}) is None
