"""What each client method asks, shared by the sync and async clients."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from keyport_client._errors import error_for

USER_HEADER = "x-meetergo-api-user-id"
_UPDATABLE = {
    "name": "name",
    "scopes": "scopes",
    "allowed_ips": "allowedIps",
    "rate_limit": "rateLimit",
}


@dataclass(frozen=True, slots=True)
class Call:
    method: str
    path: str
    json: dict[str, Any] | None = None
    params: list[tuple[str, str | int | float | bool | None]] = field(default_factory=list)


def headers(api_key: str, user_id: str | None) -> dict[str, str]:
    found = {"authorization": f"Bearer {api_key}", "user-agent": "keyport-client/1"}
    if user_id:
        found[USER_HEADER] = user_id
    return found


def key_path(key_id: str, action: str = "") -> str:
    return f"/v1/keys/{quote(key_id, safe='')}" + (f"/{action}" if action else "")


def authorize(scopes: tuple[str, ...] | list[str]) -> Call:
    return Call("GET", "/v1/authorize", params=[("scope", s) for s in scopes])


def list_page(status: str | None, limit: int, cursor: str | None) -> Call:
    params: list[tuple[str, str | int | float | bool | None]] = [("limit", limit)]
    if status:
        params.append(("status", status))
    if cursor:
        params.append(("cursor", cursor))
    return Call("GET", "/v1/keys", params=params)


def create(
    expires_in_days: int,
    name: str | None,
    scopes: list[str] | None,
    allowed_ips: list[str] | None,
    rate_limit: int | None,
) -> Call:
    body: dict[str, Any] = {"expiresInDays": expires_in_days}
    for wire, value in (
        ("name", name),
        ("scopes", scopes),
        ("allowedIps", allowed_ips),
        ("rateLimit", rate_limit),
    ):
        if value is not None:
            body[wire] = value
    return Call("POST", "/v1/keys", json=body)


def update(key_id: str, changes: dict[str, Any]) -> Call:
    unknown = set(changes) - set(_UPDATABLE)
    if unknown:
        raise TypeError(f"update_key() got unknown fields: {', '.join(sorted(unknown))}")
    return Call("PATCH", key_path(key_id), json={_UPDATABLE[k]: v for k, v in changes.items()})


def rotate(path: str, grace_period_seconds: int, expires_in_days: int | None) -> Call:
    body: dict[str, Any] = {"gracePeriodSeconds": grace_period_seconds}
    if expires_in_days is not None:
        body["expiresInDays"] = expires_in_days
    return Call("POST", path, json=body)


def result(answer: httpx.Response) -> Any:
    """The JSON body of a success; a KeyportError for anything else."""
    try:
        body = answer.json()
    except ValueError:
        body = None
    if answer.is_success:
        return body
    raise error_for(answer.status_code, body, answer.headers.get("retry-after"))
