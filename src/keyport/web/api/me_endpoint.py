"""`GET /v4/user/me` answered without the framework: the busiest read of the v4 API.

Clients call it with only the Authorization header to learn who they are, often on every
start and health check. Routing, parameter parsing and response building in the framework
cost more than the rest of such a request together, so the gate hands exactly this route here.

`me_route` is its framework twin, declared with the operation's documentation (web/openapi.py
says how fast routes are documented) and what admits it (`ADMISSION`): the gate never lets a
request reach it while `MeEndpoint` is installed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from litestar import Request, get
from litestar.handlers import HTTPRouteHandler

from keyport.domain import scopes
from keyport.domain.principal import Principal
from keyport.domain.users import User
from keyport.services.access.authentication import Authenticator
from keyport.web.api.context import acting_user
from keyport.web.api.schemas import UserOut
from keyport.web.errors import Headers
from keyport.web.gate import Admission, ExpressAnswer
from keyport.web.openapi import UserHeader, api_operation
from keyport.web.request_headers import RequestHeaders

PATH = "/v4/user/me"
_MAX_CACHED_BODIES = 10_000
_encode = msgspec.json.Encoder().encode
# A key that may read users; the acting user is the header's, else the company owner.
ADMISSION = Admission.needing(scopes.USERS_READ, acting_user=False)


async def whoami(authenticator: Authenticator, scope: Any) -> User:
    """The body of the operation, for both routes: the acting user, the owner by default."""
    return await acting_user(authenticator, scope, required=False)


def me_route(authenticator: Authenticator) -> HTTPRouteHandler:
    """The framework twin under the `/v4/user` router: documents `GET /v4/user/me`."""

    @get(
        "/me",
        operation_id="getMe",
        summary="The acting user (the company owner without the user header)",
        **api_operation(errors=(400, 403), user_header=UserHeader.OPTIONAL, admits=ADMISSION),
    )
    async def get_me(request: Request) -> UserOut:  # type: ignore[type-arg]
        return UserOut.of(await whoami(authenticator, request.scope))

    return get_me


class MeEndpoint:
    template = PATH

    def __init__(self) -> None:
        # (user id, updated_at) → encoded body and its headers: a changed user has a new key.
        self._answers: dict[tuple[str, datetime], tuple[bytes, Headers]] = {}

    @staticmethod
    def handles(scope: Any) -> bool:
        return bool(scope["path"] == PATH and scope["method"] == "GET")

    @staticmethod
    def admission(scope: Any) -> Admission:
        return ADMISSION

    def answer(self, principal: Principal, user: User, headers: RequestHeaders) -> ExpressAnswer:
        body, own_headers = self._answer(user)
        return ExpressAnswer(user.id, own_headers, body)

    def _answer(self, user: User) -> tuple[bytes, Headers]:
        """The body and its headers (never changed by whoever sends them: they add theirs
        to a copy)."""
        key = (user.id, user.updated_at)
        answer = self._answers.get(key)
        if answer is None:
            if len(self._answers) >= _MAX_CACHED_BODIES:
                self._answers.clear()
            body = _encode(UserOut.of(user))
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(body)),
            ]
            answer = self._answers[key] = (body, headers)
        return answer
