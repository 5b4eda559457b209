"""`/schema`: the API docs (Swagger UI), served entirely by Keyport.

The page, Swagger UI's assets (from the pinned `swagger-ui-bundle-v2` package, Apache-2.0,
whose licence ships with it) and the document all come from this origin: the docs work
without internet, and the Content-Security-Policy forbids anything else, inline scripts
included. The UI reads `/openapi.json`, the document Litestar builds from the route handlers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Request, Response, Router, get
from litestar.datastructures import CacheControlHeader, ResponseHeader
from litestar.exceptions import NotFoundException
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.params import FromPath
from swagger_ui_bundle import swagger_ui_path

from keyport.web.openapi import OPENAPI_PATH

DOCS_PATH = "/schema"
ASSETS_PATH = f"{DOCS_PATH}/assets"
_OURS = Path(__file__).parent / "docs"
_ASSETS: dict[str, tuple[Path, str]] = {
    "swagger-ui-bundle.js": (
        Path(str(swagger_ui_path)) / "swagger-ui-bundle.js",
        "text/javascript",
    ),
    "swagger-ui.css": (Path(str(swagger_ui_path)) / "swagger-ui.css", "text/css"),
    "favicon-32x32.png": (Path(str(swagger_ui_path)) / "favicon-32x32.png", "image/png"),
    "keyport-docs.js": (_OURS / "keyport-docs.js", "text/javascript"),
    "keyport-docs.css": (_OURS / "keyport-docs.css", "text/css"),
}
# Swagger UI styles elements through the DOM (allowed); it never needs inline <script>.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'none'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
SECURITY_HEADERS = [
    ResponseHeader(name="Content-Security-Policy", value=CONTENT_SECURITY_POLICY),
    ResponseHeader(name="X-Frame-Options", value="DENY"),
    ResponseHeader(name="X-Content-Type-Options", value="nosniff"),
    ResponseHeader(name="Referrer-Policy", value="no-referrer"),
    ResponseHeader(name="Cross-Origin-Resource-Policy", value="same-origin"),
]
_PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Keyport API</title>
<link rel="icon" type="image/png" href="{ASSETS_PATH}/favicon-32x32.png">
<link rel="stylesheet" href="{ASSETS_PATH}/swagger-ui.css">
<link rel="stylesheet" href="{ASSETS_PATH}/keyport-docs.css">
</head>
<body>
<noscript>The API docs need JavaScript. The document itself: <a href="{OPENAPI_PATH}">
{OPENAPI_PATH}</a></noscript>
<div id="swagger-ui"></div>
<script src="{ASSETS_PATH}/swagger-ui-bundle.js"></script>
<script src="{ASSETS_PATH}/keyport-docs.js"></script>
</body>
</html>
""".encode()
_cache: dict[str, bytes] = {}


@get("/assets/{name:str}", include_in_schema=False, cache_control=CacheControlHeader(max_age=3600))
async def docs_asset(name: FromPath[str]) -> Response[bytes]:
    found = _ASSETS.get(name)
    if found is None:
        raise NotFoundException()
    path, media_type = found
    if name not in _cache:
        _cache[name] = path.read_bytes()
    return Response(_cache[name], media_type=media_type)


class SwaggerDocs(OpenAPIRenderPlugin):
    """The docs page at `/schema`, with its assets under `/schema/assets`."""

    def __init__(self) -> None:
        super().__init__(path="/")

    def render(self, request: Request, openapi_schema: dict[str, Any]) -> bytes:  # type: ignore[type-arg]
        return _PAGE

    def receive_router(self, router: Router) -> None:
        router.register(docs_asset)


def docs_router() -> Router:
    """The router Litestar fills with the docs page and `/schema/openapi.json`."""
    return Router(
        DOCS_PATH, route_handlers=[], include_in_schema=False, response_headers=SECURITY_HEADERS
    )
