"""`AsyncKeyport`: the asyncio client, the same methods as `Keyport`."""

from __future__ import annotations

from typing import Any

import httpx

from keyport_client import _requests as calls
from keyport_client._models import CreatedKey, Identity, Key, KeyPage


class AsyncKeyport:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        user_id: str | None = None,
        *,
        timeout: float = 10.0,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self._http = http or httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout)
        self._headers = calls.headers(api_key, user_id)

    async def __aenter__(self) -> AsyncKeyport:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def _send(self, call: calls.Call) -> Any:
        answer = await self._http.request(
            call.method, call.path, json=call.json, params=call.params, headers=self._headers
        )
        return calls.result(answer)

    async def authorize(self, scopes: tuple[str, ...] | list[str] = ()) -> Identity:
        return Identity.from_json(await self._send(calls.authorize(scopes)))

    async def list_keys(self, status: str | None = None) -> list[Key]:
        """Every key of the company (following the pages), newest first."""
        found: list[Key] = []
        cursor: str | None = None
        while True:
            page = await self.list_keys_page(status=status, limit=100, cursor=cursor)
            found += page.keys
            if page.next_cursor is None:
                return found
            cursor = page.next_cursor

    async def list_keys_page(
        self, *, status: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> KeyPage:
        return KeyPage.from_json(await self._send(calls.list_page(status, limit, cursor)))

    async def create_key(
        self,
        expires_in_days: int,
        name: str | None = None,
        scopes: list[str] | None = None,
        allowed_ips: list[str] | None = None,
        rate_limit: int | None = None,
    ) -> CreatedKey:
        call = calls.create(expires_in_days, name, scopes, allowed_ips, rate_limit)
        return CreatedKey.from_json(await self._send(call))

    async def get_key(self, id: str) -> Key:
        return Key.from_json(await self._send(calls.Call("GET", calls.key_path(id))))

    async def update_key(self, id: str, **changes: Any) -> Key:
        """Any of name, scopes, allowed_ips, rate_limit; None resets the last three."""
        return Key.from_json(await self._send(calls.update(id, changes)))

    async def deactivate_key(self, id: str) -> Key:
        return Key.from_json(await self._send(calls.Call("POST", calls.key_path(id, "deactivate"))))

    async def activate_key(self, id: str) -> Key:
        return Key.from_json(await self._send(calls.Call("POST", calls.key_path(id, "activate"))))

    async def revoke_key(self, id: str) -> Key:
        return Key.from_json(await self._send(calls.Call("POST", calls.key_path(id, "revoke"))))

    async def rotate_key(
        self, id: str, grace_period_seconds: int = 0, expires_in_days: int | None = None
    ) -> CreatedKey:
        call = calls.rotate(calls.key_path(id, "rotate"), grace_period_seconds, expires_in_days)
        return CreatedKey.from_json(await self._send(call))

    async def rotate_self(
        self, grace_period_seconds: int = 0, expires_in_days: int | None = None
    ) -> CreatedKey:
        """Replace the key this client uses; use the returned key from now on."""
        call = calls.rotate("/v1/keys/self/rotate", grace_period_seconds, expires_in_days)
        return CreatedKey.from_json(await self._send(call))
