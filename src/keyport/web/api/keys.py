"""The management API `/v1/keys` (docs/contract.md §8): parse, call its use cases, shape.

Every route declares what admits it (`keys:manage`, or any key for self-rotation); the gate
has run every check (web/gate/pipeline.py) before any of this runs, and
services.keys.management_api decides on scopes handed out, roles and companies.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from litestar import Request, Router, get, patch, post
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, QueryParameter

from keyport.domain import scopes
from keyport.domain.clock import Clock
from keyport.domain.keys import ApiKey
from keyport.services.access.authentication import Authenticator
from keyport.services.keys.lifecycle import KeyService, RotatedKey
from keyport.services.keys.management_api import DEFAULT_PAGE, MAX_PAGE, Caller, KeyApi
from keyport.web.api.context import acting_user, api_actor, principal_of, require_principal
from keyport.web.api.key_schemas import (
    CreatedKeyOut,
    CreateKeyIn,
    KeyListOut,
    KeyOut,
    RotateKeyIn,
    UpdateKeyIn,
)
from keyport.web.api.schemas import decode_body
from keyport.web.gate import ANY_CREDENTIAL, Admission
from keyport.web.openapi import UserHeader, api_operation
from keyport.web.query import refuse_unknown

Limit = Annotated[int, QueryParameter(ge=1, le=MAX_PAGE, description="Keys per page, 1 to 100")]
Status = Annotated[
    str | None, QueryParameter(description="active, deactivated, expired or revoked")
]
Cursor = Annotated[str | None, QueryParameter(description="nextCursor of the previous page")]
KeyId = FromPath[str]
MANAGE = Admission.needing(scopes.KEYS_MANAGE)
LIST_PARAMETERS = frozenset({"status", "limit", "cursor"})


def key_router(auth: Authenticator, keys: KeyService, clock: Clock) -> Router:
    api = KeyApi(keys)

    async def caller_of(request: Request[Any, Any, Any]) -> Caller:
        user = await acting_user(auth, request.scope, required=False)
        return Caller(principal_of(request.scope), user, api_actor(request.scope, user))

    def shown(key: Any) -> KeyOut:
        return KeyOut.of(key, clock.now())

    def rotated_out(rotated: RotatedKey) -> CreatedKeyOut:
        return CreatedKeyOut.issued(rotated.issued, clock.now())

    async def rotate_body(request: Request[Any, Any, Any]) -> RotateKeyIn:
        raw = await request.body()
        return decode_body(raw, RotateKeyIn) if raw.strip() else RotateKeyIn()

    @get(
        "/",
        operation_id="listKeys",
        summary="List the company's keys, newest first",
        **api_operation(errors=(400, 403), user_header=UserHeader.OPTIONAL, admits=MANAGE),
    )
    async def list_keys(
        request: Request[Any, Any, Any],
        status: Status = None,
        limit: Limit = DEFAULT_PAGE,
        cursor: Cursor = None,
    ) -> KeyListOut:
        refuse_unknown(request.query_params, LIST_PARAMETERS)
        page = await api.list_keys(
            await caller_of(request), status=status, limit=limit, cursor=cursor
        )
        return KeyListOut([shown(k) for k in page.keys], page.next_cursor)

    @post(
        "/",
        status_code=201,
        operation_id="createKey",
        summary="Create a key; the full key is in this answer only",
        **api_operation(
            errors=(400, 403), user_header=UserHeader.OPTIONAL, body=CreateKeyIn, admits=MANAGE
        ),
    )
    async def create_key(request: Request[Any, Any, Any]) -> CreatedKeyOut:
        data = decode_body(await request.body(), CreateKeyIn)
        issued = await api.create_key(
            await caller_of(request),
            name=data.name,
            days=data.expires_in_days,
            scopes=data.scopes,
            allowed_ips=data.allowed_ips,
            rate_limit=data.rate_limit,
        )
        return CreatedKeyOut.issued(issued, clock.now())

    @post(
        "/self/rotate",
        status_code=201,
        operation_id="rotateSelf",
        summary="Replace the calling key by a new one (no scope needed; user header ignored)",
        **api_operation(
            errors=(400, 403, 409),
            user_header=UserHeader.OPTIONAL,
            body=RotateKeyIn,
            body_required=False,
            admits=ANY_CREDENTIAL,  # a key may always replace itself
        ),
    )
    async def rotate_self(request: Request[Any, Any, Any]) -> CreatedKeyOut:
        body = await rotate_body(request)
        principal = principal_of(request.scope)
        owner = await auth.acting_user(principal, None, required=False)  # header ignored
        rotated = await api.rotate_self(
            principal,
            api_actor(request.scope, owner),
            grace_period_seconds=body.grace_period_seconds,
            days=body.expires_in_days,
        )
        return rotated_out(rotated)

    @get(
        "/{key_id:str}",
        operation_id="getKey",
        summary="One key of the company",
        **api_operation(errors=(400, 403, 404), user_header=UserHeader.OPTIONAL, admits=MANAGE),
    )
    async def get_key(request: Request[Any, Any, Any], key_id: KeyId) -> KeyOut:
        return shown(await api.get_key(await caller_of(request), key_id))

    @patch(
        "/{key_id:str}",
        operation_id="updateKey",
        summary="Change a key's name, scopes, allowlist or rate limit",
        **api_operation(
            errors=(400, 403, 404),
            user_header=UserHeader.OPTIONAL,
            body=UpdateKeyIn,
            admits=MANAGE,
        ),
    )
    async def update_key(request: Request[Any, Any, Any], key_id: KeyId) -> KeyOut:
        data = decode_body(await request.body(), UpdateKeyIn)
        return shown(await api.update_key(await caller_of(request), key_id, data.changes()))

    def status_change(
        verb: str,
        operation_id: str,
        summary: str,
        change: Callable[[Caller, str], Awaitable[ApiKey]],
    ) -> HTTPRouteHandler:
        """`POST /v1/keys/{key_id}/<verb>`: one status change, answered with the changed key."""

        async def change_status(request: Request[Any, Any, Any], key_id: KeyId) -> KeyOut:
            return shown(await change(await caller_of(request), key_id))

        return post(
            f"/{{key_id:str}}/{verb}",
            status_code=200,
            operation_id=operation_id,
            summary=summary,
            **api_operation(
                errors=(400, 403, 404, 409), user_header=UserHeader.OPTIONAL, admits=MANAGE
            ),
        )(change_status)

    deactivate_key = status_change(
        "deactivate", "deactivateKey", "Deactivate a key", api.deactivate_key
    )
    activate_key = status_change(
        "activate", "activateKey", "Activate a deactivated key", api.activate_key
    )
    revoke_key = status_change("revoke", "revokeKey", "Revoke a key for good", api.revoke_key)

    @post(
        "/{key_id:str}/rotate",
        status_code=201,
        operation_id="rotateKey",
        summary="Replace a key; the old one works for the grace period",
        **api_operation(
            errors=(400, 403, 404, 409),
            user_header=UserHeader.OPTIONAL,
            body=RotateKeyIn,
            body_required=False,
            admits=MANAGE,
        ),
    )
    async def rotate_key(request: Request[Any, Any, Any], key_id: KeyId) -> CreatedKeyOut:
        body = await rotate_body(request)
        rotated = await api.rotate_key(
            await caller_of(request),
            key_id,
            grace_period_seconds=body.grace_period_seconds,
            days=body.expires_in_days,
        )
        return rotated_out(rotated)

    return Router(
        path="/v1/keys",
        route_handlers=[
            list_keys,
            create_key,
            rotate_self,
            get_key,
            update_key,
            deactivate_key,
            activate_key,
            revoke_key,
            rotate_key,
        ],
        tags=["keys"],
        guards=[require_principal],
    )
