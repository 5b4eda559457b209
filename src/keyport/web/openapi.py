"""The OpenAPI document: Litestar's, completed with what it cannot see.

Route handlers read request bodies and the user header themselves (so that the error order of
DESIGN.md §1 holds), so their schemas are added here from the same msgspec types.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Litestar, Request, get
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from keyport import __version__
from keyport.web.api.context import USER_HEADER
from keyport.web.api.schemas import CreateUserIn, UpdateUserIn

OPENAPI_PATH = "/openapi.json"
_BODIES = {("/v4/user", "post"): CreateUserIn, ("/v4/user/{user_id}", "patch"): UpdateUserIn}
_HEADER_OPTIONAL = {("/v4/user/me", "get"), ("/v4/user", "post")}


class _SwaggerOnOurDocument(SwaggerRenderPlugin):
    @staticmethod
    def get_openapi_json_route(request: Request) -> str:  # type: ignore[type-arg]
        return OPENAPI_PATH


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Keyport v4 API",
        version=__version__,
        description="Platform API keys compatible with the meetergo v4 model.",
        path="/schema",
        render_plugins=[_SwaggerOnOurDocument(path="/")],
        components=Components(
            security_schemes={
                "apiKey": SecurityScheme(
                    type="http",
                    scheme="bearer",
                    description="`Authorization: Bearer ak_live:<key-id>:<secret>`",
                )
            }
        ),
    )


def complete_document(document: dict[str, Any]) -> dict[str, Any]:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    _, components = msgspec.json.schema_components(
        [CreateUserIn, UpdateUserIn], ref_template="#/components/schemas/{name}"
    )
    schemas.update(components)
    for path, operations in document.get("paths", {}).items():
        if not path.startswith("/v4"):
            continue
        for method, operation in operations.items():
            if method not in {"get", "post", "patch", "delete", "put"}:
                continue
            operation["security"] = [{"apiKey": []}]
            operation.setdefault("parameters", []).append(
                {
                    "name": USER_HEADER,
                    "in": "header",
                    "required": (path, method) not in _HEADER_OPTIONAL,
                    "schema": {"type": "string", "format": "uuid"},
                    "description": "The user of the key's company to act as",
                }
            )
            body = _BODIES.get((path, method))
            if body is not None:
                operation["requestBody"] = {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": f"#/components/schemas/{body.__name__}"}
                        }
                    },
                }
    return document


def openapi_route() -> Any:
    cache: dict[str, bytes] = {}

    @get(OPENAPI_PATH, include_in_schema=False, media_type="application/json")
    async def openapi_json(request: Request) -> bytes:  # type: ignore[type-arg]
        if "doc" not in cache:
            app: Litestar = request.app
            cache["doc"] = msgspec.json.encode(complete_document(app.openapi_schema.to_schema()))
        return cache["doc"]

    return openapi_json
