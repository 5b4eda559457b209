"""The management API `/v1/tokens`: parse, call services.keys.token_api, shape.

The gate has authenticated the key (and refused a personal access token) before any of this
runs; services.keys.token_api decides on scopes, roles and companies.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, Router, get, post
from litestar.params import FromPath, QueryParameter

from keyport.domain.clock import Clock
from keyport.domain.personal_tokens import token_object
from keyport.services.access.authentication import Authenticator
from keyport.services.keys.management_api import DEFAULT_PAGE, MAX_PAGE, Caller
from keyport.services.keys.personal_tokens import PersonalTokenService, TokenView
from keyport.services.keys.token_api import TokenApi
from keyport.web.api.context import acting_user, api_actor, principal_of, require_principal
from keyport.web.api.keys import MANAGE
from keyport.web.openapi import UserHeader, api_operation
from keyport.web.query import refuse_unknown

Limit = Annotated[int, QueryParameter(ge=1, le=MAX_PAGE, description="Tokens per page, 1 to 100")]
Cursor = Annotated[str | None, QueryParameter(description="nextCursor of the previous page")]
UserId = Annotated[str | None, QueryParameter(name="userId", description="Only this user's tokens")]
TokenId = FromPath[str]
LIST_PARAMETERS = frozenset({"limit", "cursor", "userId"})


class LeakOut(msgspec.Struct, rename="camel"):
    url: str
    source: str
    reported_by: str
    reported_at: str


class TokenOut(msgspec.Struct, rename="camel"):
    """A personal access token as the management API shows it: never the token or digest."""

    id: str
    name: str
    user_id: str
    status: str  # active | expired | revoked | disabled
    scopes: list[str]
    created_at: str
    expires_at: str | None
    last_used_at: str | None
    hint: str
    leak: LeakOut | None

    @classmethod
    def of(cls, view: TokenView, clock: Clock) -> TokenOut:
        shown = token_object(view.token, clock.now(), True) | {"status": view.state.value}
        return msgspec.convert(shown, cls)


class TokenListOut(msgspec.Struct, rename="camel"):
    tokens: list[TokenOut]
    next_cursor: str | None


def token_router(auth: Authenticator, tokens: PersonalTokenService, clock: Clock) -> Router:
    api = TokenApi(tokens)

    async def caller_of(request: Request[Any, Any, Any]) -> Caller:
        user = await acting_user(auth, request.scope, required=False)
        return Caller(principal_of(request.scope), user, api_actor(request.scope, user))

    @get(
        "/",
        operation_id="listTokens",
        summary="List the company's personal access tokens, newest first",
        **api_operation(errors=(400, 403), user_header=UserHeader.OPTIONAL, admits=MANAGE),
    )
    async def list_tokens(
        request: Request[Any, Any, Any],
        limit: Limit = DEFAULT_PAGE,
        cursor: Cursor = None,
        user_id: UserId = None,
    ) -> TokenListOut:
        refuse_unknown(request.query_params, LIST_PARAMETERS)
        page = await api.list_tokens(
            await caller_of(request), user_id=user_id, limit=limit, cursor=cursor
        )
        return TokenListOut([TokenOut.of(v, clock) for v in page.tokens], page.next_cursor)

    @get(
        "/{token_id:str}",
        operation_id="getToken",
        summary="One personal access token of the company",
        **api_operation(errors=(400, 403, 404), user_header=UserHeader.OPTIONAL, admits=MANAGE),
    )
    async def get_token(request: Request[Any, Any, Any], token_id: TokenId) -> TokenOut:
        return TokenOut.of(await api.get_token(await caller_of(request), token_id), clock)

    @post(
        "/{token_id:str}/revoke",
        status_code=200,
        operation_id="revokeToken",
        summary="Revoke a personal access token for good",
        **api_operation(
            errors=(400, 403, 404, 409), user_header=UserHeader.OPTIONAL, admits=MANAGE
        ),
    )
    async def revoke_token(request: Request[Any, Any, Any], token_id: TokenId) -> TokenOut:
        return TokenOut.of(await api.revoke_token(await caller_of(request), token_id), clock)

    return Router(
        path="/v1/tokens",
        route_handlers=[list_tokens, get_token, revoke_token],
        tags=["tokens"],
        guards=[require_principal],
    )
