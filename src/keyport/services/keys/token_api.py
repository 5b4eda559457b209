"""The management API's token use cases (`/v1/tokens`): a company key holding `keys:manage`,
acting as an owner or admin, lists, reads and revokes its company's personal access tokens.
There is no creation by API: a token is a person's. Another company's token is NotFound,
exactly like an unknown one."""

from __future__ import annotations

from dataclasses import dataclass

from keyport.domain.errors import ValidationFailed
from keyport.domain.users import parse_uuid
from keyport.services.keys.management_api import (
    Caller,
    decode_cursor,
    encode_cursor,
    require_manager,
)
from keyport.services.keys.personal_tokens import PersonalTokenService, TokenView


@dataclass(frozen=True, slots=True)
class TokenListPage:
    tokens: list[TokenView]
    next_cursor: str | None


class TokenApi:
    def __init__(self, tokens: PersonalTokenService) -> None:
        self._tokens = tokens

    async def list_tokens(
        self, caller: Caller, *, user_id: str | None, limit: int, cursor: str | None
    ) -> TokenListPage:
        require_manager(caller)
        owner = None
        if user_id:
            owner = parse_uuid(user_id)
            if owner is None:
                raise ValidationFailed.single("userId", "must be a UUID")
        after = decode_cursor(cursor) if cursor else None
        views, more = await self._tokens.page(caller.principal.company_id, owner, after, limit)
        next_cursor = encode_cursor(views[-1].token) if more and views else None
        return TokenListPage(views, next_cursor)

    async def get_token(self, caller: Caller, token_id: str) -> TokenView:
        require_manager(caller)
        return await self._tokens.get_in_company(caller.principal.company_id, token_id)

    async def revoke_token(self, caller: Caller, token_id: str) -> TokenView:
        require_manager(caller)
        company_id = caller.principal.company_id
        await self._tokens.revoke(None, token_id, caller.actor, company_id=company_id)
        return await self._tokens.get_in_company(company_id, token_id)
