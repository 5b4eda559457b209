"""One v4 API call to a served process, the refusal answers the tests compare it with, and the
fields of a key object (in /v1/keys answers and in webhook events alike)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

KEY_FIELDS = {
    "id",
    "name",
    "status",
    "scopes",
    "allowedIps",
    "rateLimit",
    "createdAt",
    "expiresAt",
    "lastUsedAt",
    "hint",
    "rotatedTo",
}


def call(base_url: str, path: str, key: str | None = None) -> tuple[int, dict[str, object]]:
    """GET `path` with the key as a bearer token: (status, decoded JSON body)."""
    request = urllib.request.Request(base_url + path)
    if key is not None:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as refused_answer:
        return refused_answer.code, json.loads(refused_answer.read())


def refused(message: str) -> tuple[int, dict[str, object]]:
    return 401, {"statusCode": 401, "message": message, "error": "Unauthorized"}


def validation_failed(field: str, message: str) -> tuple[int, dict[str, object]]:
    """(status, body) of a 400 naming one field, as every route answers it."""
    body = {"statusCode": 400, "message": "Validation failed", "error": "Bad Request"}
    return 400, {**body, "errors": [{"field": field, "message": message}]}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
