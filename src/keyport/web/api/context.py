"""What a v4 route needs to know about its request: the key, the acting user, the actor."""

from __future__ import annotations

from typing import Any

from keyport.domain.audit import Actor
from keyport.domain.principal import Principal
from keyport.domain.users import User
from keyport.services.authentication import Authenticator
from keyport.web.gate import header
from keyport.web.request_context import context_of

USER_HEADER = "x-meetergo-api-user-id"
_USER_HEADER_BYTES = USER_HEADER.encode()


def principal_of(scope: Any) -> Principal:
    """The verified key's principal: the gate refuses /v4 requests before they get here."""
    principal = context_of(scope).principal
    if principal is None:
        raise RuntimeError("a /v4 route ran without the gate in front of it")
    return principal


async def acting_user(authenticator: Authenticator, scope: Any, *, required: bool) -> User:
    user = await authenticator.acting_user(
        principal_of(scope), header(scope, _USER_HEADER_BYTES), required=required
    )
    context_of(scope).acting_user_id = user.id
    return user


def api_actor(scope: Any, user: User) -> Actor:
    context = context_of(scope)
    return Actor(
        "api_key", user_id=user.id, key_id=principal_of(scope).key_id, ip=context.client_ip
    )
