"""The wire shapes of `/v1/keys` (docs/contract.md §8): the key object, bodies, pages."""

from __future__ import annotations

from datetime import datetime

import msgspec

from keyport.domain.key_events import iso_utc
from keyport.domain.keys import ApiKey, IssuedKey


class KeyOut(msgspec.Struct, rename="camel"):
    """A key as the management API shows it: never the secret or its digest."""

    id: str
    name: str | None
    status: str  # active | deactivated | expired | revoked
    scopes: list[str]
    allowed_ips: list[str]
    rate_limit: int | None
    created_at: str
    expires_at: str
    last_used_at: str | None
    hint: str
    rotated_to: str | None  # the successor's id once the key was rotated

    @classmethod
    def of(cls, key: ApiKey, now: datetime) -> KeyOut:
        return cls(
            id=key.id,
            name=key.name,
            status=key.state(now).value,
            scopes=list(key.scopes),
            allowed_ips=list(key.allowed_ips),
            rate_limit=key.rate_limit,
            created_at=iso_utc(key.created_at),
            expires_at=iso_utc(key.expires_at),
            last_used_at=iso_utc(key.last_used_at) if key.last_used_at else None,
            hint=key.hint,
            rotated_to=key.rotated_to,
        )


class CreatedKeyOut(KeyOut, rename="camel"):
    key: str  # the full key, shown this once

    @classmethod
    def issued(cls, issued: IssuedKey, now: datetime) -> CreatedKeyOut:
        shown = KeyOut.of(issued.record, now)
        return cls(**{f: getattr(shown, f) for f in KeyOut.__struct_fields__}, key=issued.key)


class KeyListOut(msgspec.Struct, rename="camel"):
    keys: list[KeyOut]
    next_cursor: str | None


class CreateKeyIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    expires_in_days: int
    name: str | None = None
    scopes: list[str] | None = None
    allowed_ips: list[str] | None = None
    rate_limit: int | None = None


class UpdateKeyIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """Only the fields given change; null resets scopes (full access), allowedIps
    (anywhere) and rateLimit (the default)."""

    name: str | msgspec.UnsetType | None = msgspec.UNSET
    scopes: list[str] | msgspec.UnsetType | None = msgspec.UNSET
    allowed_ips: list[str] | msgspec.UnsetType | None = msgspec.UNSET
    rate_limit: int | msgspec.UnsetType | None = msgspec.UNSET

    def changes(self) -> dict[str, object]:
        return {
            wire: getattr(self, field)
            for field, wire in (
                ("name", "name"),
                ("scopes", "scopes"),
                ("allowed_ips", "allowedIps"),
                ("rate_limit", "rateLimit"),
            )
            if getattr(self, field) is not msgspec.UNSET
        }


class RotateKeyIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    grace_period_seconds: int = 0
    expires_in_days: int | None = None
