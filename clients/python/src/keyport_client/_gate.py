"""The one question each guarded request costs: `GET /v1/authorize?scope=…&cost=…` with the
request's credential, user header, method, URI, user agent and client address.

Every framework's integration is a thin driver of `Gate`: it tells the gate the request's path
and headers and what its route needs, and hands on what comes back. Nothing is cached, so rate
limits, credits, usage and revocations stay exactly Keyport's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from keyport_client._addresses import ClientAddress
from keyport_client._decision import (
    INVALID_PATH,
    UNAVAILABLE,
    Allowed,
    Needs,
    Refusal,
    decide,
)
from keyport_client._paths import PathRules, is_clean
from keyport_client._wire import Answer, AsyncWire, Endpoint, SyncWire

logger = logging.getLogger("keyport_client")

USER_HEADER = "x-meetergo-api-user-id"
DEFAULT_TIMEOUT = 2.0
RefusalHook = Callable[[Refusal], Refusal | None]
_MAX_TARGETS = 1_000


@dataclass(frozen=True, slots=True)
class Incoming:
    """What the question needs of one request, as raw header bytes."""

    method: bytes
    uri: bytes  # the target the client sent, without its query
    credentials: Sequence[bytes]  # every value of the credential header, duplicates kept
    user_ids: Sequence[bytes]  # every value of the user header
    peer: str | None  # the address the app's server saw
    forwarded_for: Sequence[str]  # every X-Forwarded-For value (read behind trusted proxies only)
    user_agent: bytes | None


class Gate:
    """The settings an integration is given, and the asking itself (sync or async)."""

    def __init__(
        self,
        keyport_url: str,
        scopes: Mapping[str, str | Sequence[str]] | None = None,
        exclude: Iterable[str] = (),
        *,
        credential_header: str = "authorization",
        timeout: float = DEFAULT_TIMEOUT,
        trusted_proxies: Iterable[str] | str = (),
        on_refusal: RefusalHook | None = None,
    ) -> None:
        if not isinstance(keyport_url, str):
            raise ValueError(f"keyport_url: {keyport_url!r} is not an http:// or https:// URL")
        if not timeout > 0:
            raise ValueError("timeout: give the seconds to wait for Keyport, more than 0")
        endpoint = Endpoint.parse(keyport_url)
        self._authorize = quote(endpoint.base_path) + "/v1/authorize"
        self.rules = PathRules(scopes, exclude)
        self.credential_header = credential_header.lower()
        # The credential in a header of the app's own choosing is the bare key or token.
        self._bare = self.credential_header != "authorization"
        self.addresses = ClientAddress(trusted_proxies)
        self.on_refusal = on_refusal
        self._sync = SyncWire(endpoint, timeout)
        self._async = AsyncWire(endpoint, timeout)
        self._targets: dict[Needs, bytes] = {}

    # --- before asking ------------------------------------------------------------------------

    def path_refusal(self, path: str) -> Refusal | None:
        """The 400 for a path that is not clean (`_paths`), else None."""
        return None if is_clean(path) else self.refuse(INVALID_PATH)

    def excluded(self, path: str) -> bool:
        return self.rules.excluded(path)

    def needs(self, path: str, route: Needs | None = None) -> Needs:
        """The path's scopes (the app's prefix rules), then the route's own needs."""
        found = Needs(self.rules.scopes_for(path))
        return found if route is None else found + route

    def refuse(self, refusal: Refusal) -> Refusal:
        """The refusal the client gets, after the app's `on_refusal` hook had its say."""
        if self.on_refusal is None:
            return refusal
        replaced = self.on_refusal(refusal)
        return refusal if replaced is None else replaced

    # --- asking -------------------------------------------------------------------------------

    def ask(self, incoming: Incoming, needs: Needs) -> Allowed | Refusal:
        try:
            answer = self._sync.get(self._target(needs), self._headers(incoming))
        except Exception as error:  # no answer at all is never a yes
            return self._unavailable(error)
        return self._decided(answer, needs)

    async def ask_async(self, incoming: Incoming, needs: Needs) -> Allowed | Refusal:
        try:
            answer = await self._async.get(self._target(needs), self._headers(incoming))
        except Exception as error:
            return self._unavailable(error)
        return self._decided(answer, needs)

    def close(self) -> None:
        """Closes this process's idle connections to Keyport (new ones open when needed)."""
        self._sync.close()

    async def aclose(self) -> None:
        await self._async.aclose()

    def _decided(self, answer: Answer, needs: Needs) -> Allowed | Refusal:
        decided = decide(answer.status, answer.headers, answer.body, needs)
        if decided is UNAVAILABLE:
            logger.warning("Keyport answered %s to /v1/authorize: 503", answer.status)
        return self.refuse(decided) if isinstance(decided, Refusal) else decided

    def _unavailable(self, error: Exception) -> Refusal:
        logger.warning("Keyport could not be asked (%s): 503", type(error).__name__)
        return self.refuse(UNAVAILABLE)

    def _target(self, needs: Needs) -> bytes:
        target = self._targets.get(needs)
        if target is None:
            query: list[tuple[str, str | int]] = [("scope", s) for s in needs.scopes]
            if needs.cost is not None:
                query.append(("cost", needs.cost))
            text = self._authorize + ("?" + urlencode(query) if query else "")
            target = text.encode("ascii")
            if len(self._targets) >= _MAX_TARGETS:
                self._targets.clear()
            self._targets[needs] = target
        return target

    def _headers(self, incoming: Incoming) -> list[tuple[bytes, bytes]]:
        if self._bare:
            bare = [c.strip() for c in incoming.credentials]
            found = [(b"authorization", b"Bearer " + c) for c in bare if c]
        else:
            found = [(b"authorization", c) for c in incoming.credentials]
        found += [(USER_HEADER.encode(), user) for user in incoming.user_ids]
        client = self.addresses.of(incoming.peer, incoming.forwarded_for)
        if client is not None:
            found.append((b"x-forwarded-for", client.encode()))
        found.append((b"x-forwarded-method", incoming.method))
        found.append((b"x-forwarded-uri", incoming.uri))
        found.append((b"user-agent", incoming.user_agent or b"keyport-client"))
        return found
