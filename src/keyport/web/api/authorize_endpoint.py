"""`/v1/authorize`: a reverse proxy asks whether a request to the operator's own service may
pass, and learns who is calling (docs/contract.md §7).

The gate runs every check (web/gate/pipeline.py) — the scopes its `?scope=` names, and the
acting user: the header when present, else the company owner — and this answers 200 with the
identity in the body and in `X-Keyport-*` headers (`X-Keyport-Credential` names the kind:
`api_key` or `personal_access_token`), which the proxy copies onto the request it forwards
upstream.

`authorize_route` is its framework twin, declared with the operation's documentation
(web/openapi.py says how fast routes are documented) and what admits it (`ADMISSION`): the gate
never lets a request reach it while `AuthorizeEndpoint` is installed. Both answer through
`_answer`.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any, cast

import msgspec
from litestar import Request, Response, get
from litestar.handlers import HTTPRouteHandler
from litestar.params import HeaderParameter, QueryParameter

from keyport.domain.principal import Principal
from keyport.domain.users import User
from keyport.services.access.authentication import Authenticator
from keyport.web.api.context import acting_user, principal_of
from keyport.web.api.schemas import iso_utc
from keyport.web.gate import Admission, ExpressAnswer
from keyport.web.openapi import UserHeader, api_operation
from keyport.web.paths import AUTHORIZE_PATH, is_authorize
from keyport.web.request_context import context_of
from keyport.web.request_headers import MINIMAL, RequestHeaders

_MAX_CACHED = 10_000
# Any valid key holding the scopes `?scope=` names; the acting user is the header's, else the
# company owner. Asked as Envoy does (`/v1/authorize/<original path>`), the query is the
# client's own and never decides what is required.
ADMISSION = Admission(asked_in_query=True, acting_user=False)
FORWARDED_ADMISSION = Admission(acting_user=False)
_Answer = tuple[bytes, list[tuple[bytes, bytes]]]


class AuthorizationOut(msgspec.Struct, rename="camel"):
    key_id: str
    company_id: str
    user_id: str
    user_role: str
    scopes: list[str]
    expires_at: str | None  # null: a personal access token without expiry
    credential: str  # api_key | personal_access_token


def _expiry(principal: Principal) -> str | None:
    if math.isinf(principal.expires_at):
        return None
    return iso_utc(datetime.fromtimestamp(principal.expires_at, UTC))


def _answer(principal: Principal, user: User) -> _Answer:
    body = msgspec.json.encode(
        AuthorizationOut(
            key_id=principal.key_id,
            company_id=principal.company_id,
            user_id=user.id,
            user_role=user.role.value,
            scopes=list(principal.scopes),
            expires_at=_expiry(principal),
            credential=principal.credential.value,
        )
    )
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-keyport-key-id", principal.key_id.encode()),
        (b"x-keyport-company-id", principal.company_id.encode()),
        (b"x-keyport-user-id", user.id.encode()),
        (b"x-keyport-user-role", user.role.value.encode()),
        (b"x-keyport-scopes", " ".join(principal.scopes).encode()),
        (b"x-keyport-credential", principal.credential.value.encode()),
    ]
    return body, headers


def _minimal(answer: _Answer) -> _Answer:
    """The same answer without its body, saying that `Prefer: return=minimal` was applied."""
    _, headers = answer
    kept = [(name, value) for name, value in headers if name != b"content-length"]
    return b"", [*kept, (b"content-length", b"0"), (b"preference-applied", MINIMAL.encode())]


RequiredScopes = Annotated[
    list[str] | None,
    QueryParameter(
        name="scope",
        description="Scopes the request needs (repeatable); the first one the key lacks is "
        "named in the 403.",
    ),
]
Prefer = Annotated[
    str | None,
    HeaderParameter(
        name="prefer",
        description="`return=minimal` (RFC 7240): answer 200 without a body, with the same "
        "headers and `Preference-Applied: return=minimal`. Refusals keep their body.",
    ),
]


def authorize_route(authenticator: Authenticator) -> HTTPRouteHandler:
    """The framework twin: documents `/v1/authorize` (GET; every other method answers alike)."""

    @get(
        "/v1/authorize",
        operation_id="authorize",
        tags=["gateway"],
        summary="May this request pass the reverse proxy, and who is calling? "
        "(any method; docs/contract.md §7)",
        **api_operation(errors=(400, 403), user_header=UserHeader.OPTIONAL, admits=ADMISSION),
    )
    async def authorize(
        request: Request,  # type: ignore[type-arg]
        required_scopes: RequiredScopes = None,
        prefer: Prefer = None,
    ) -> Response[AuthorizationOut]:
        user = await acting_user(authenticator, request.scope, required=False)
        body, headers = _answer(principal_of(request.scope), user)
        extra = {k.decode(): v.decode() for k, v in headers if k.startswith(b"x-keyport-")}
        if context_of(request.scope).headers.minimal:
            extra["preference-applied"] = MINIMAL
            return cast(Response[AuthorizationOut], Response(b"", headers=extra))
        return Response(msgspec.json.decode(body, type=AuthorizationOut), headers=extra)

    return authorize


class AuthorizeEndpoint:
    template = AUTHORIZE_PATH

    def __init__(self) -> None:
        # (id(principal), id(user), minimal) → (principal, user, answer). The cached principal
        # and user objects are replaced whenever they change, so identity says "same answer"
        # without hashing their fields; the objects are kept so that an id is never reused
        # wrongly.
        self._answers: dict[tuple[int, int, bool], tuple[Principal, User, _Answer]] = {}

    @staticmethod
    def handles(scope: Any) -> bool:
        return is_authorize(scope["path"])

    @staticmethod
    def admission(scope: Any) -> Admission:
        return ADMISSION if scope["path"] == AUTHORIZE_PATH else FORWARDED_ADMISSION

    def answer(self, principal: Principal, user: User, headers: RequestHeaders) -> ExpressAnswer:
        body, answer_headers = self._cached(principal, user, headers.minimal)
        return ExpressAnswer(user.id, answer_headers, body)

    def _cached(self, principal: Principal, user: User, minimal: bool) -> _Answer:
        key = (id(principal), id(user), minimal)
        found = self._answers.get(key)
        if found is not None and found[0] is principal and found[1] is user:
            return found[2]
        if len(self._answers) >= _MAX_CACHED:
            self._answers.clear()
        answer = _answer(principal, user)
        if minimal:
            answer = _minimal(answer)
        self._answers[key] = (principal, user, answer)
        return answer
