"""The steps of the request pipeline, each one implementation with its two faces (check.py).
Their order is declared once, in web/gate/pipeline.py."""

from __future__ import annotations

import logging
import time

from keyport.domain import errors as domain
from keyport.domain import token_requests
from keyport.domain.auth_outcomes import KEY_STATE_REFUSALS, AuthOutcome, failure_of
from keyport.services.access.authentication import Authenticator, presented_key_or_refusal
from keyport.web import errors
from keyport.web.gate.check import HAND_ON, PASS, SPEND, ASGIApp, Check, Passage, Refusal, Verdict
from keyport.web.paths import is_canonical
from keyport.web.request_context import RequestContext
from keyport.web.throttling import Throttle

# Request headers beyond this (names and values together) are refused with 431. uvicorn's
# parser has no limit of its own: web/http_protocol.py stops reading them past 1 MiB.
logger = logging.getLogger(__name__)

MAX_HEADER_BYTES = 16 * 1024
_HEADERS_TOO_LARGE = errors.render(domain.HeadersTooLarge())
_NON_CANONICAL_PATH = errors.render(domain.NonCanonicalPath())
_RESERVED_HEADER = errors.render(domain.ReservedHeader())


class HeaderSize(Check):
    """Headers too large to read further: 431, on every path."""

    name = "header size"

    def now(self, passage: Passage) -> Verdict:
        return _HEADERS_TOO_LARGE if passage.headers.size > MAX_HEADER_BYTES else PASS

    async def run(self, passage: Passage) -> Refusal | None:
        return self.now(passage)  # type: ignore[return-value]


class DuplicateHeaders(Check):
    """Two `Authorization` or user headers: 400, not a failed authentication (a proxy that
    read the other copy must never disagree with us about who is calling). At a gateway's
    question, also a client's header named X-Keyport-* (domain.errors.ReservedHeader)."""

    name = "duplicate headers"

    def now(self, passage: Passage) -> Verdict:
        headers = passage.headers
        if (headers.duplicated is None and not headers.keyport_named) or passage.admission is None:
            return PASS
        if headers.duplicated is not None:
            return errors.render(domain.DuplicateHeader(headers.duplicated))
        # A gateway's question (`?scope=` routes: /v1/authorize) carrying a client's
        # X-Keyport-* header: refused, so that no proxy passes one on to its upstream.
        return _RESERVED_HEADER if passage.admission.asked_in_query else PASS

    async def run(self, passage: Passage) -> Refusal | None:
        return self.now(passage)  # type: ignore[return-value]


class CanonicalPath(Check):
    """A path not in its one canonical form (web/paths.py): 400, on every path."""

    name = "canonical path"

    def now(self, passage: Passage) -> Verdict:
        scope = passage.scope
        return PASS if is_canonical(scope["path"], scope.get("raw_path")) else _NON_CANONICAL_PATH

    async def run(self, passage: Passage) -> Refusal | None:
        return self.now(passage)  # type: ignore[return-value]


def _refused(passage: Passage, error: domain.KeyportError) -> Refusal:
    """The refusal of a request whose credential was verified, noting why for the record."""
    passage.context.auth_failure = failure_of(error)
    return errors.render(error)


def _needs_credential(passage: Passage) -> bool:
    admission = passage.admission
    return admission is not None and not admission.signature


class ClientIpBlock(Check):
    """An address still serving its time for failed authentications: 429 before its
    credential is looked at."""

    name = "client IP block"

    def __init__(self, throttle: Throttle) -> None:
        self._throttle = throttle

    def now(self, passage: Passage) -> Verdict:
        if not _needs_credential(passage):
            return PASS
        return self._throttle.refuse_client(passage.context.client_ip)

    async def run(self, passage: Passage) -> Refusal | None:
        return self.now(passage)  # type: ignore[return-value]


class Credential(Check):
    """The API key (401: missing, invalid, unknown or revoked, expired, deactivated), counted
    against the client's address when refused."""

    name = "credential"

    def __init__(self, authenticator: Authenticator, throttle: Throttle) -> None:
        self._authenticator = authenticator
        self._throttle = throttle

    def now(self, passage: Passage) -> Verdict:
        if not _needs_credential(passage):
            return PASS
        context = passage.context
        authorization = context.headers.authorization
        started = time.perf_counter()
        try:
            key = passage.key
            if key is None:
                key = passage.key = presented_key_or_refusal(authorization)
            principal = self._authenticator.verify_now(key, authorization)
        except domain.AuthenticationError as error:
            # A refusal is the answer only if its failure is counted without I/O.
            if not self._throttle.authentication_failed_now(context.client_ip):
                return HAND_ON
            context.verification_seconds = time.perf_counter() - started
            return self._refused(context, error, authorization)
        if principal is None:
            return HAND_ON
        context.verification_seconds = time.perf_counter() - started
        context.principal = principal
        return PASS

    async def run(self, passage: Passage) -> Refusal | None:
        if not _needs_credential(passage):
            return None
        context = passage.context
        authorization = context.headers.authorization
        started = time.perf_counter()
        try:
            context.principal = await self._authenticator.authenticate(authorization)
        except domain.AuthenticationError as error:
            await self._throttle.authentication_failed(context.client_ip)
            return self._refused(context, error, authorization)
        finally:
            context.verification_seconds = time.perf_counter() - started
        return None

    def _refused(
        self, context: RequestContext, error: domain.AuthenticationError, authorization: str | None
    ) -> Refusal:
        reason = context.auth_failure = failure_of(error)
        if reason in KEY_STATE_REFUSALS:
            # A real credential that may not be used now: its owner wants to see such attempts.
            context.refused_key_id = self._authenticator.refused_key_id(authorization)
        return errors.render(error)


class CredentialKindRefusals(Check):
    """What one kind of credential may never do, whatever its scopes (403): a personal access
    token naming another user, managing users or credentials. API keys have no such rule."""

    name = "credential kind's refusals"

    def now(self, passage: Passage) -> Verdict:
        principal = passage.context.principal
        if principal is None or not principal.is_token:
            return PASS
        scope = passage.scope
        refusal = token_requests.refusal(
            scope["method"],
            scope["path"],
            scope["query_string"],
            passage.headers.user_id,
            principal.owner_id,
        )
        return PASS if refusal is None else _refused(passage, refusal)

    async def run(self, passage: Passage) -> Refusal | None:
        return self.now(passage)  # type: ignore[return-value]


class Allowlist(Check):
    """The credential's IP allowlist: 403 from elsewhere."""

    name = "allowlist"

    def now(self, passage: Passage) -> Verdict:
        context = passage.context
        principal = context.principal
        if principal is None or not principal.allowed_networks:
            return PASS
        if _forwarded_by_a_stranger(passage):
            _warn_untrusted_forwarder(context.client_ip)
            return _refused(passage, domain.IpNotAllowed())
        if principal.allows_ip(context.client_ip):
            return PASS
        return _refused(passage, domain.IpNotAllowed())

    async def run(self, passage: Passage) -> Refusal | None:
        return self.now(passage)  # type: ignore[return-value]


def _forwarded_by_a_stranger(passage: Passage) -> bool:
    """A gateway's question (`?scope=` routes: /v1/authorize) naming a client address in
    X-Forwarded-For, from an asker Keyport does not trust to say so: the allowlist would be
    checked against the asking app's own address, which is never what its operator meant."""
    admission = passage.admission
    return (
        admission is not None
        and admission.asked_in_query
        and bool(passage.context.headers.forwarded_for)
        and not passage.context.via_trusted_proxy
    )


_WARN_EVERY = 60.0  # seconds: a misconfigured app asks on every request
_last_warning = [float("-inf")]


def _warn_untrusted_forwarder(asker: str | None) -> None:
    if time.monotonic() - _last_warning[0] >= _WARN_EVERY:
        _last_warning[0] = time.monotonic()
        logger.warning(
            "%s sent X-Forwarded-For for a key with an IP allowlist but is not in "
            "KEYPORT_TRUSTED_PROXIES: refused (403). Add the asking app's address to "
            "KEYPORT_TRUSTED_PROXIES so that the client address it names is believed.",
            asker,
        )


class Scopes(Check):
    """The scopes the route declares (or the request asks for, at the gateway): 403 naming
    the first missing one; 400 for a malformed `?scope=`."""

    name = "scopes"

    def now(self, passage: Passage) -> Verdict:
        principal = passage.context.principal
        admission = passage.admission
        if principal is None or admission is None:
            return PASS
        try:
            needed = admission.needed(passage.scope)
        except domain.KeyportError as error:
            return _refused(passage, error)
        if not needed:
            return PASS
        missing = principal.missing_scope(needed)
        if missing is None:
            return PASS
        return _refused(passage, domain.InsufficientScope(missing))

    async def run(self, passage: Passage) -> Refusal | None:
        return self.now(passage)  # type: ignore[return-value]


class Budget(Check):
    """The credential's rate limit: 429 when spent; every answer after it carries RateLimit-*."""

    name = "budget"

    def __init__(self, throttle: Throttle) -> None:
        self._throttle = throttle

    def now(self, passage: Passage) -> Verdict:
        principal = passage.context.principal
        if principal is None or not self._throttle.limits(principal):
            return PASS
        return SPEND

    def spend_now(self, passage: Passage) -> bool:
        principal = passage.context.principal
        assert principal is not None  # SPEND only with one
        return self._throttle.admit_now(principal, passage.added)

    async def run(self, passage: Passage) -> Refusal | None:
        principal = passage.context.principal
        if principal is None:
            return None
        refusal = await self._throttle.admit(principal, passage.added)
        if refusal is not None:
            passage.context.auth_failure = AuthOutcome.RATE_LIMITED
        return refusal


class ActingUser(Check):
    """The user the request acts as, where the route declares it needs one (400/403)."""

    name = "acting user"

    def __init__(self, authenticator: Authenticator) -> None:
        self._authenticator = authenticator

    def now(self, passage: Passage) -> Verdict:
        principal = passage.context.principal
        admission = passage.admission
        if principal is None or admission is None or admission.acting_user is None:
            return PASS
        try:
            user = self._authenticator.acting_user_now(
                principal, passage.headers.user_id, required=admission.acting_user
            )
        except domain.KeyportError:
            return HAND_ON  # the ASGI path refuses it, noting why
        if user is None:
            return HAND_ON
        passage.user = user
        passage.context.acting_user_id = user.id
        return PASS

    async def run(self, passage: Passage) -> Refusal | None:
        principal = passage.context.principal
        admission = passage.admission
        if principal is None or admission is None or admission.acting_user is None:
            return None
        try:
            user = await self._authenticator.acting_user(
                principal, passage.headers.user_id, required=admission.acting_user
            )
        except domain.KeyportError as error:
            return _refused(passage, error)
        passage.user = user
        passage.context.acting_user_id = user.id
        return None


class Credits(Check):
    """Credits the request costs (429 when none are left). No credential has credits yet: this
    step passes until they come."""

    name = "credits"

    def now(self, passage: Passage) -> Verdict:
        return PASS

    async def run(self, passage: Passage) -> Refusal | None:
        return None


class Route(Check):
    """The answer: a fast route's from what the checks found, else the framework's."""

    name = "route"

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    def now(self, passage: Passage) -> Verdict:
        route = passage.route
        principal = passage.context.principal
        if route is None or principal is None or passage.user is None:
            return HAND_ON
        passage.answer = route.answer(principal, passage.user, passage.headers)
        passage.context.route = route.template
        return PASS

    async def run(self, passage: Passage) -> Refusal | None:
        route = passage.route
        principal = passage.context.principal
        if route is None or principal is None or passage.user is None:
            await self._app(passage.scope, passage.receive, passage.send)
            return None
        passage.context.route = route.template
        _, headers, body = route.answer(principal, passage.user, passage.headers)
        assert passage.send is not None  # the ASGI path's
        await passage.send({"type": "http.response.start", "status": 200, "headers": headers})
        await passage.send({"type": "http.response.body", "body": body})
        return None
