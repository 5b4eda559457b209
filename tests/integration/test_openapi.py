"""The OpenAPI document: valid, complete (bodies, errors in our shape, headers, the key and the
user header), one document wherever it is served, and the fast `/me` route answering exactly
like the framework route that documents it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from litestar import Litestar
from openapi_spec_validator import validate

from keyport.bootstrap import Container
from keyport.web.app import create_app
from keyport.web.gate import ApiGate
from keyport.web.route_admissions import route_admissions
from tests.conftest import Tenant

# The document is built from the routes: the database is not part of it.
pytestmark = pytest.mark.sqlite_only

METHODS = {"get", "post", "put", "patch", "delete"}
V4_OPERATIONS = {
    ("/v4/user/me", "get"),
    ("/v4/user", "get"),
    ("/v4/user", "post"),
    ("/v4/user/{user_id}", "get"),
    ("/v4/user/{user_id}", "patch"),
    ("/v4/user/{user_id}", "delete"),
}
V1_KEY_OPERATIONS = {
    ("/v1/keys", "get"),
    ("/v1/keys", "post"),
    ("/v1/keys/self/rotate", "post"),
    ("/v1/keys/{key_id}", "get"),
    ("/v1/keys/{key_id}", "patch"),
    ("/v1/keys/{key_id}/deactivate", "post"),
    ("/v1/keys/{key_id}/activate", "post"),
    ("/v1/keys/{key_id}/revoke", "post"),
    ("/v1/keys/{key_id}/rotate", "post"),
    ("/v1/tokens", "get"),
    ("/v1/tokens/{token_id}", "get"),
    ("/v1/tokens/{token_id}/revoke", "post"),
}
ERROR_REF = {"$ref": "#/components/schemas/ErrorOut"}


async def document(client: httpx.AsyncClient) -> dict[str, Any]:
    answer = await client.get("/openapi.json")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    served: dict[str, Any] = answer.json()
    return served


def operations(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (path, method): operation
        for path, item in doc["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    }


async def test_the_document_is_valid_openapi_and_the_docs_ui_reads_the_same_one(
    client: httpx.AsyncClient,
) -> None:
    doc = await document(client)
    validate(doc)  # raises on any violation of the OpenAPI 3.1 schema
    assert doc["openapi"].startswith("3.1")
    assert (await client.get("/schema/openapi.json")).json() == doc
    assert set(operations(doc)) == V4_OPERATIONS | V1_KEY_OPERATIONS | {
        ("/v1/authorize", "get"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
    }


async def test_every_v4_operation_declares_key_user_header_errors_and_headers(
    client: httpx.AsyncClient,
) -> None:
    doc = await document(client)
    assert doc["components"]["securitySchemes"]["apiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "`Authorization: Bearer ak_live:<key-id>:<secret>`",
    }
    error = doc["components"]["schemas"]["ErrorOut"]
    assert set(error["required"]) == {"statusCode", "message", "error"}
    assert "errors" in error["properties"]
    authorize = {("/v1/authorize", "get")}
    optional_header = {("/v4/user/me", "get"), ("/v4/user", "post"), *V1_KEY_OPERATIONS}
    optional_header |= authorize
    for key in V4_OPERATIONS | V1_KEY_OPERATIONS | authorize:
        operation = operations(doc)[key]
        assert operation["security"] == [{"apiKey": []}], key
        (user_header,) = [
            p for p in operation["parameters"] if p["name"] == "x-meetergo-api-user-id"
        ]
        assert user_header["in"] == "header"
        assert user_header["required"] is (key not in optional_header), key
        responses = operation["responses"]
        assert {"400", "401", "403", "429", "431", "503"} <= set(responses), key
        for status, response in responses.items():
            assert response["headers"]["X-Request-Id"]["required"] is True
            assert "RateLimit-Remaining" in response["headers"]
            if not status.startswith("2"):
                assert response["content"]["application/json"]["schema"] == ERROR_REF, key
        assert responses["401"]["headers"]["WWW-Authenticate"]["required"] is True
        assert responses["429"]["headers"]["Retry-After"]["required"] is True
        assert responses["503"]["headers"]["Retry-After"]["required"] is True
        if "{user_id}" in key[0]:
            (path_id,) = [p for p in operation["parameters"] if p["name"] == "user_id"]
            assert path_id["schema"] == {"type": "string", "format": "uuid"}
            assert "404" in responses


async def test_request_bodies_are_documented_from_the_types_the_handlers_decode(
    client: httpx.AsyncClient,
) -> None:
    ops = operations(await document(client))
    create = ops[("/v4/user", "post")]["requestBody"]
    assert create["required"] is True
    schema = create["content"]["application/json"]["schema"]
    assert schema["required"] == ["email", "givenName", "familyName", "timezone"]
    assert schema["additionalProperties"] is False
    assert ops[("/v4/user", "post")]["responses"]["409"]["description"]
    patch = ops[("/v4/user/{user_id}", "patch")]["requestBody"]
    assert set(patch["content"]["application/json"]["schema"]["properties"]) == {
        "givenName",
        "familyName",
        "slug",
        "email",
    }
    assert {"413", "409"} <= set(ops[("/v4/user/{user_id}", "patch")]["responses"])
    keys_create = ops[("/v1/keys", "post")]["requestBody"]["content"]["application/json"]
    assert keys_create["schema"]["required"] == ["expiresInDays"]
    rotate_body = ops[("/v1/keys/{key_id}/rotate", "post")]["requestBody"]
    assert rotate_body["required"] is False  # an empty body rotates with the defaults
    assert ops[("/v1/keys/self/rotate", "post")]["requestBody"]["required"] is False
    rotate = rotate_body["content"]
    assert set(rotate["application/json"]["schema"]["properties"]) == {
        "gracePeriodSeconds",
        "expiresInDays",
    }
    for key, operation in ops.items():
        if key[1] in {"get", "delete"}:
            assert "requestBody" not in operation, key


async def test_every_api_operation_has_a_stable_id_and_a_tag(client: httpx.AsyncClient) -> None:
    # Generated clients name their functions and modules after these (tests/e2e/
    # test_generated_client.py): Litestar's defaults would be `V1KeysKeyIdGetKey` and `default`.
    ops = operations(await document(client))
    named = {
        key: (op["operationId"], op["tags"])
        for key, op in ops.items()
        if key[0].startswith(("/v1", "/v4"))
    }
    assert named == {
        ("/v4/user/me", "get"): ("getMe", ["users"]),
        ("/v4/user", "get"): ("listUsers", ["users"]),
        ("/v4/user", "post"): ("createUser", ["users"]),
        ("/v4/user/{user_id}", "get"): ("getUser", ["users"]),
        ("/v4/user/{user_id}", "patch"): ("updateUser", ["users"]),
        ("/v4/user/{user_id}", "delete"): ("deleteUser", ["users"]),
        ("/v1/authorize", "get"): ("authorize", ["gateway"]),
        ("/v1/keys", "get"): ("listKeys", ["keys"]),
        ("/v1/keys", "post"): ("createKey", ["keys"]),
        ("/v1/keys/self/rotate", "post"): ("rotateSelf", ["keys"]),
        ("/v1/keys/{key_id}", "get"): ("getKey", ["keys"]),
        ("/v1/keys/{key_id}", "patch"): ("updateKey", ["keys"]),
        ("/v1/keys/{key_id}/deactivate", "post"): ("deactivateKey", ["keys"]),
        ("/v1/keys/{key_id}/activate", "post"): ("activateKey", ["keys"]),
        ("/v1/keys/{key_id}/revoke", "post"): ("revokeKey", ["keys"]),
        ("/v1/keys/{key_id}/rotate", "post"): ("rotateKey", ["keys"]),
        ("/v1/tokens", "get"): ("listTokens", ["tokens"]),
        ("/v1/tokens/{token_id}", "get"): ("getToken", ["tokens"]),
        ("/v1/tokens/{token_id}/revoke", "post"): ("revokeToken", ["tokens"]),
    }


async def test_operations_endpoints_are_documented_with_their_answers(
    client: httpx.AsyncClient,
) -> None:
    ops = operations(await document(client))
    readyz = ops[("/readyz", "get")]["responses"]
    assert readyz["503"]["headers"]["Retry-After"]["required"] is True
    assert "security" not in ops[("/healthz", "get")]
    assert "text/plain" in next(iter(ops[("/metrics", "get")]["responses"]["200"]["content"]))


@pytest.mark.parametrize("path", ["/v4/user/me", "/v1/authorize"])
@pytest.mark.parametrize(
    "variant", ["owner", "member", "blank header", "bad header", "stranger", "no key"]
)
async def test_a_fast_route_answers_like_its_documented_framework_twin(
    container: Container, tenant: Tenant, variant: str, path: str
) -> None:
    headers = {
        "owner": tenant.auth(),
        "member": tenant.auth(tenant.member),
        "blank header": {**tenant.auth(), "x-meetergo-api-user-id": " "},
        "bad header": {**tenant.auth(), "x-meetergo-api-user-id": "nope"},
        "stranger": {
            **tenant.auth(),
            "x-meetergo-api-user-id": "00000000-0000-4000-8000-000000000000",
        },
        "no key": {},
    }[variant]
    fast = create_app(container, run_background=False)
    assert isinstance(fast.app, Litestar)  # the router behind the gate
    framework_only = ApiGate(
        fast.app, container.authenticator, admission_of=route_admissions(fast.app)
    )
    answers = []
    for app in (fast, framework_only):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://keyport.test") as http:
            answers.append(await http.get(path, headers=headers))
    served_fast, served_framework = answers
    assert served_fast.status_code == served_framework.status_code
    assert served_fast.json() == served_framework.json()
    assert served_fast.headers["content-type"] == served_framework.headers["content-type"]
    identity = {k: v for k, v in served_fast.headers.items() if k.startswith("x-keyport-")}
    assert identity == {
        k: v for k, v in served_framework.headers.items() if k.startswith("x-keyport-")
    }
    if path == "/v1/authorize" and served_fast.status_code == 200:
        assert identity["x-keyport-key-id"] == served_fast.json()["keyId"]
    assert served_fast.status_code == {"bad header": 400, "stranger": 403, "no key": 401}.get(
        variant, 200
    )
