"""One step of the request pipeline, and the request it walks (`Passage`).

A step (`Check`) has one implementation with two faces, one per driver (web/gate/pipeline.py):

- `now(passage)`: the express lane's question, answered without I/O: `PASS`, `HAND_ON` (only
  `run` can say: a cache miss, a lease to ask for), `SPEND` (it passes by spending: the express
  lane calls `spend_now` once every step has passed, so that a request it hands on has spent
  nothing), or the refusal itself, which the express lane then answers. It changes nothing
  but the passage, except a refusal's own effects (a failed authentication counted), and
  those only when they need no I/O: otherwise it hands on;
- `run(passage)`: the whole check for the ASGI path, I/O allowed, effects included (a token
  taken, a failure counted): None to go on, else the refusal.

A refusal is an answer already rendered (status, JSON body, headers), as web/errors.py makes
them; neither face raises one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any, Final, NamedTuple, Protocol

from keyport.web import errors
from keyport.web.request_context import RequestContext

if TYPE_CHECKING:
    from keyport.domain.principal import Principal
    from keyport.domain.users import User
    from keyport.services.access.authentication import PresentedKey
    from keyport.web.gate.admission import Admission
    from keyport.web.request_headers import RequestHeaders

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[..., Awaitable[None]]
Refusal = tuple[int, bytes, errors.Headers]


class _Verdict:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


PASS: Final = None
HAND_ON: Final = _Verdict("HAND_ON")
SPEND: Final = _Verdict("SPEND")
Verdict = _Verdict | Refusal | None


class ExpressAnswer(NamedTuple):
    """A fast route's 200, built from what the checks found (see `FastRoute.answer`)."""

    acting_user_id: str
    headers: errors.Headers  # its own; the gate adds its headers after them
    body: bytes


class FastRoute(Protocol):
    """A hot route answered in plain ASGI, after every check, without the framework.

    Each has a documented framework twin of the same method and path (web/openapi.py says how),
    which puts it in the OpenAPI document and declares what admits it.
    """

    template: str  # the route it answers, for the record (RequestRecord.route)

    def handles(self, scope: Scope) -> bool: ...

    def admission(self, scope: Scope) -> Admission:
        """What admits a request to it: what its twin declares (one constant for both)."""
        ...

    def answer(self, principal: Principal, user: User, headers: RequestHeaders) -> ExpressAnswer:
        """The 200 for the acting user the checks resolved; never any I/O."""
        ...


class Passage:
    """One request on its way through the checks: what the request says, then what each step
    found. The ASGI path and the express lane fill it alike."""

    __slots__ = (
        "added",
        "admission",
        "answer",
        "context",
        "key",
        "receive",
        "route",
        "scope",
        "send",
        "user",
    )

    def __init__(
        self,
        scope: Scope,
        context: RequestContext,
        added: errors.Headers,
        *,
        route: FastRoute | None,
        admission: Admission | None,
    ) -> None:
        self.scope = scope
        self.context = context
        self.added = added  # the headers every answer gets (request id, HSTS, RateLimit-*)
        self.route = route  # the fast route that answers, else None (the framework does)
        self.admission = admission  # what its route declares; None: not an API path
        self.key: PresentedKey | None = None  # the express lane's reading of the header
        self.user: User | None = None  # the acting user, where the route needs one
        self.answer: ExpressAnswer | None = None  # a fast route's answer, in the express lane
        self.receive: Receive | None = None  # the ASGI path's channels, for the route
        self.send: Send | None = None

    @property
    def headers(self) -> RequestHeaders:
        return self.context.headers

    @property
    def principal(self) -> Principal | None:
        return self.context.principal


class Check:
    """A step that cannot decide without I/O: override `now` where it can, and `spend_now`
    where `now` answers SPEND."""

    name = "check"

    def now(self, passage: Passage) -> Verdict:
        return HAND_ON

    async def run(self, passage: Passage) -> Refusal | None:
        raise NotImplementedError

    def spend_now(self, passage: Passage) -> bool:
        """Spend what `now` promised; False, having spent nothing, when it cannot now."""
        return True
