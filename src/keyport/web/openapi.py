"""How an operation is documented: declared on its route handler, never patched afterwards.

Litestar builds the OpenAPI document from the route handlers: paths, query and path
parameters, success bodies (from the return type). What it cannot see is declared here and
attached to each handler with `**api_operation(...)` or `**ops_operation(...)` in its
decorator:

- the request body: handlers read it themselves (`decode_body`), so that the error order of
  docs/contract.md §2 holds; `body=CreateUserIn` documents it from the same msgspec type;
- the user header (`x-meetergo-api-user-id`), read by `acting_user`, required or optional;
- every error the operation can answer, all in one shape (`ErrorOut`), including those the
  gate answers before routing (401, 429, 431, 503), with their headers (`WWW-Authenticate`,
  `Retry-After`), the `RateLimit-*` headers of every `/v4` answer and `X-Request-Id`;
- the bearer scheme.

Fast routes (answered by the gate in plain ASGI, web/gate/check.py `FastRoute`) are documented the
same way: next to the fast code sits a framework route handler of the same method and path,
declared with `api_operation`, that calls the same body function. The gate never lets a
request reach it while the fast route is installed, so it only documents the operation (and
answers if the gate is built without fast routes); a test checks both answer alike
(tests/integration/test_openapi.py). See web/api/me_endpoint.py for the pattern.

The same document is served at `/openapi.json` and to the docs UI (web/docs_ui.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any

import msgspec
from litestar import Litestar, Request, Router, get
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.openapi.spec import (
    Components,
    OpenAPIFormat,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    Parameter,
    RequestBody,
    Schema,
    SecurityScheme,
)

from keyport import __version__
from keyport.web.errors import ErrorOut
from keyport.web.gate.admission import Admission
from keyport.web.request_headers import USER_HEADER as _USER_HEADER_BYTES

OPENAPI_PATH = "/openapi.json"
SECURITY_SCHEME = "apiKey"
USER_HEADER = _USER_HEADER_BYTES.decode()


class UserHeader(Enum):
    REQUIRED = "required"
    OPTIONAL = "optional"  # absent or blank: the company owner acts


# What each error means, wherever it is answered. An operation lists the ones it can answer.
ERRORS: dict[int, str] = {
    400: "Validation failed (`errors` names each field); or the user header is missing or "
    "not a UUID; or `Authorization` or the user header was sent twice "
    "(`Duplicate header: <name>`); or the path is not canonical (`Invalid request path`)",
    401: "Missing, malformed, unknown, revoked, expired or deactivated API key",
    403: "The acting user is not in the key's company, or may not do this",
    404: "No such user in the key's company",
    409: "The change conflicts with stored data (a user with this email or slug exists)",
    413: "Request body over 64 KiB",
    429: "Over the key's rate limit, or too many failed authentications from this address, "
    "or (creating users, changing slugs) over the key's hourly limit of those",
    431: "Request headers over 16 KiB",
    503: "The database cannot answer now: retry after Retry-After seconds",
}
# Answered by the gate to any /v4 request before it reaches a route.
_GATE_ERRORS = (400, 401, 429, 431, 503)


def _integer_header(description: str, *, required: bool = False) -> OpenAPIHeader:
    return OpenAPIHeader(
        description=description,
        required=required,
        schema=Schema(type=OpenAPIType.INTEGER, minimum=0),
    )


def _request_id() -> OpenAPIHeader:
    return OpenAPIHeader(
        description="This request's id, as in the request log",
        required=True,
        schema=Schema(type=OpenAPIType.STRING, pattern="^[0-9a-f]{24}$"),
    )


def _rate_limit_headers() -> dict[str, OpenAPIHeader]:
    # Absent when the key has no limit, and on answers refused before the key was known.
    return {
        "RateLimit-Limit": _integer_header("The key's bucket: the most requests at once"),
        "RateLimit-Remaining": _integer_header("Requests the key may still make right now"),
        "RateLimit-Reset": _integer_header("Seconds until the key's bucket is full again"),
    }


def _error_headers(status: int) -> dict[str, OpenAPIHeader]:
    if status == 401:
        return {
            "WWW-Authenticate": OpenAPIHeader(
                description="How to authenticate", required=True, schema=Schema(const="Bearer")
            )
        }
    if status in (429, 503):
        return {"Retry-After": _integer_header("Seconds to wait before retrying", required=True)}
    return {}


def _user_header(required: bool) -> Parameter:
    return Parameter(
        name=USER_HEADER,
        param_in="header",
        required=required,
        # Blank is the same as absent, like a blank Authorization header.
        schema=Schema(
            any_of=[
                Schema(type="string", format="uuid"),  # type: ignore[arg-type]
                Schema(type=OpenAPIType.STRING, pattern="^[ \\t]*$"),
            ]
        ),
        description="The user of the key's company to act as (a UUID)"
        + ("" if required else "; without it, the company owner"),
    )


def _body_schema(body: type) -> dict[str, Any]:
    """The msgspec type's JSON schema, inline (body types are flat structs)."""
    _, components = msgspec.json.schema_components(
        [body], ref_template="#/components/schemas/{name}"
    )
    inline: dict[str, Any] = dict(components[body.__name__])
    inline.pop("title", None)  # generated clients then name it after the operation
    return inline


@dataclass(frozen=True)
class Declaration:
    """What an operation's handler says about itself beyond its signature."""

    errors: tuple[int, ...]
    body: type | None = None
    user_header: UserHeader | None = None
    body_required: bool = True  # False: an empty body means every field's default
    api: bool = True  # behind the gate: bearer key, RateLimit-* headers, gate errors

    def complete(self, operation: Operation) -> None:
        """Adds what Litestar's generated operation lacks (called as it is built)."""
        parameters = list(operation.parameters or [])
        for parameter in parameters:
            if isinstance(parameter, Parameter) and parameter.name == "user_id":
                parameter.schema = Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.UUID)
        if self.user_header is not None:
            parameters.append(_user_header(self.user_header is UserHeader.REQUIRED))
        operation.parameters = parameters or None
        if self.body is not None:
            operation.request_body = RequestBody(
                required=self.body_required,
                content={"application/json": OpenAPIMediaType(schema=_body_schema(self.body))},  # type: ignore[arg-type]
            )
        for code, response in (operation.responses or {}).items():
            if not hasattr(response, "headers"):
                continue
            headers: dict[str, Any] = {"X-Request-Id": _request_id()}
            if self.api:
                headers.update(_rate_limit_headers())
            if not code.startswith("2"):
                headers.update(_error_headers(int(code)))
            response.headers = headers


def _operation_class(declaration: Declaration) -> type[Operation]:
    @dataclass
    class DeclaredOperation(Operation):
        def __post_init__(self) -> None:
            declaration.complete(self)

    return DeclaredOperation


def _responses(errors: Iterable[int]) -> dict[int, ResponseSpec]:
    return {
        status: ResponseSpec(ErrorOut, description=ERRORS[status], generate_examples=False)
        for status in sorted(set(errors))
    }


def api_operation(
    *,
    errors: Iterable[int],
    user_header: UserHeader,
    admits: Admission,
    body: type | None = None,
    body_required: bool = True,
) -> dict[str, Any]:
    """Route decorator arguments that document a `/v4` (or `/v1`) operation completely and
    declare what admits a request to it (web/gate/admission.py).

    `errors`: the statuses the handler's own code can answer; the gate's are added, and 413
    when there is a body. `body_required=False`: the handler takes an empty body as `{}`.
    """
    statuses = {*errors, *_GATE_ERRORS, *((413,) if body is not None else ())}
    declaration = Declaration(tuple(sorted(statuses)), body, user_header, body_required)
    return {
        "responses": _responses(statuses),
        "operation_class": _operation_class(declaration),
        "security": [{SECURITY_SCHEME: []}],
        "opt": admits.opt,
    }


def ops_operation(*, answers: dict[int, ResponseSpec] | None = None) -> dict[str, Any]:
    """Route decorator arguments for an operations endpoint (no key, no rate limit).

    `answers`: other answers than success, in their own shape (readiness reports itself).
    """
    responses = {**_responses((431,)), **(answers or {})}
    declaration = Declaration(tuple(sorted(responses)), api=False)
    return {"responses": responses, "operation_class": _operation_class(declaration)}


def openapi_config(docs: OpenAPIRenderPlugin, docs_router: Router) -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Keyport API",
        version=__version__,
        description="Platform API keys compatible with the meetergo v4 model. "
        "Every error answers `{statusCode, message, error}` (and `errors` on a 400 "
        "`Validation failed`).",
        render_plugins=[docs],
        openapi_router=docs_router,
        create_examples=False,
        components=Components(
            security_schemes={
                SECURITY_SCHEME: SecurityScheme(
                    type="http",
                    scheme="bearer",
                    description="`Authorization: Bearer ak_live:<key-id>:<secret>`",
                )
            }
        ),
    )


def openapi_route() -> Any:
    """`/openapi.json`: the document Litestar serves to the docs UI, the same object."""
    cache: dict[str, bytes] = {}

    @get(OPENAPI_PATH, include_in_schema=False, media_type="application/json")
    async def openapi_json(request: Request) -> bytes:  # type: ignore[type-arg]
        if "doc" not in cache:
            app: Litestar = request.app
            cache["doc"] = msgspec.json.encode(app.openapi_schema.to_schema())
        return cache["doc"]

    return openapi_json
