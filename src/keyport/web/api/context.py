"""What a v4 route needs to know about its request: the key, the acting user, the actor."""

from __future__ import annotations

import logging
from typing import Any

from keyport.domain.audit import Actor
from keyport.domain.errors import MissingAuthorization
from keyport.domain.principal import Principal
from keyport.domain.users import User
from keyport.services.access.authentication import Authenticator
from keyport.web.gate.admission import ADMITS
from keyport.web.paths import guarded_prefix
from keyport.web.request_context import context_of, find_context

USER_HEADER = "x-meetergo-api-user-id"
logger = logging.getLogger(__name__)


def principal_of(scope: Any) -> Principal:
    """The key the gate verified; refused (401) should a request ever get here without one."""
    context = find_context(scope)
    principal = context.principal if context is not None else None
    if principal is None:
        # The gate authenticates every API path before routing: this is a hole, not a client
        # error. Refuse like a missing key and say so, without a traceback.
        logger.warning("API route reached without a verified key: %s", scope.get("path"))
        raise MissingAuthorization()
    return principal


def require_principal(connection: Any, handler: Any = None) -> None:
    """The application's guard: no handler under an API prefix (web/paths.py), present or
    added later, runs for a request the gate did not authenticate — unless it declares that a
    signature of its own admits requests (web/gate/admission.py)."""
    if guarded_prefix(connection.scope["path"]) is None:
        return
    admission = getattr(handler, "opt", {}).get(ADMITS)
    if admission is None or not admission.signature:
        principal_of(connection.scope)


async def acting_user(authenticator: Authenticator, scope: Any, *, required: bool) -> User:
    context = context_of(scope)
    user = await authenticator.acting_user(
        principal_of(scope), context.headers.user_id, required=required
    )
    context.acting_user_id = user.id
    return user


def api_actor(scope: Any, user: User) -> Actor:
    context = context_of(scope)
    return Actor(
        "api_key", user_id=user.id, key_id=principal_of(scope).key_id, ip=context.client_ip
    )
