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
from keyport.web.api.schemas import CreateUserIn, ErrorOut, UpdateUserIn

OPENAPI_PATH = "/openapi.json"
_BODIES = {("/v4/user", "post"): CreateUserIn, ("/v4/user/{user_id}", "patch"): UpdateUserIn}
_HEADER_OPTIONAL = {("/v4/user/me", "get"), ("/v4/user", "post")}
_BLANK = {"type": "string", "pattern": "^[ \\t]*$"}
_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
_API_ERRORS = {
    400: "Validation failed; or the user header is missing or not a UUID",
    401: "Missing, malformed, unknown, revoked, expired or deactivated API key",
    403: "The acting user is not in the key's company, or may not do this",
    404: "No such user in the key's company",
    409: "A user with this email or slug exists",
    413: "Request body over 64 KiB",
    429: "Over the key's rate limit, or too many failed authentications from this address",
    431: "Request headers over 16 KiB",
    503: "The database cannot answer now: retry after Retry-After seconds",
}


def _header(description: str) -> dict[str, Any]:
    return {"description": description, "schema": {"type": "integer", "minimum": 0}}


_RATE_LIMIT_HEADERS = {
    "RateLimit-Limit": _header("The key's bucket size: the most requests that may pass at once"),
    "RateLimit-Remaining": _header("Requests the key may still make right now"),
    "RateLimit-Reset": _header("Seconds until the key's bucket is full again"),
}
_RETRY_AFTER = {"Retry-After": {**_header("Seconds to wait before trying again"), "required": True}}


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
        [CreateUserIn, UpdateUserIn, ErrorOut], ref_template="#/components/schemas/{name}"
    )
    schemas.update(components)
    for path, operations in document.get("paths", {}).items():
        if path == "/readyz":
            operations["get"]["responses"]["503"] = {
                "description": "The database does not answer",
                "headers": _RETRY_AFTER,
            }
        if not path.startswith("/v4"):
            continue
        for method, operation in operations.items():
            if method not in {"get", "post", "patch", "delete", "put"}:
                continue
            operation["security"] = [{"apiKey": []}]
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] == "user_id":
                    parameter["schema"] = {"type": "string", "format": "uuid"}
            operation.setdefault("parameters", []).append(
                {
                    "name": USER_HEADER,
                    "in": "header",
                    "required": (path, method) not in _HEADER_OPTIONAL,
                    # Blank is the same as absent, like a blank Authorization header.
                    "schema": {"anyOf": [{"type": "string", "format": "uuid"}, _BLANK]},
                    "description": "The user of the key's company to act as (a UUID)",
                }
            )
            _document_answers(operation["responses"])
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


def _document_answers(responses: dict[str, Any]) -> None:
    """Every error a v4 operation can answer, in the one shape they all have."""
    for code, success in responses.items():
        if code.startswith("2"):
            success["headers"] = {**success.get("headers", {}), **_RATE_LIMIT_HEADERS}
    for status, description in _API_ERRORS.items():
        answer: dict[str, Any] = {"description": description, "content": _ERROR}
        if status in (429, 503):
            answer["headers"] = _RETRY_AFTER
        responses[str(status)] = answer


def openapi_route() -> Any:
    cache: dict[str, bytes] = {}

    @get(OPENAPI_PATH, include_in_schema=False, media_type="application/json")
    async def openapi_json(request: Request) -> bytes:  # type: ignore[type-arg]
        if "doc" not in cache:
            app: Litestar = request.app
            cache["doc"] = msgspec.json.encode(complete_document(app.openapi_schema.to_schema()))
        return cache["doc"]

    return openapi_json
