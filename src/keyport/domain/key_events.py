"""The key object of docs/contract.md §8 (API answers and webhook `data`): never a secret."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from keyport.domain.keys import ApiKey


def iso_utc(moment: datetime) -> str:
    """`2024-01-15T10:30:00.000Z`, as every Keyport answer writes timestamps."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def key_object(key: ApiKey, now: datetime) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "status": key.state(now).value,
        "scopes": list(key.scopes),
        "allowedIps": list(key.allowed_ips),
        "rateLimit": key.rate_limit,
        "createdAt": iso_utc(key.created_at),
        "expiresAt": iso_utc(key.expires_at),
        "lastUsedAt": iso_utc(key.last_used_at) if key.last_used_at else None,
        "hint": key.hint,
        "rotatedTo": key.rotated_to,
    }


def event_payload(event_type: str, data: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {"type": event_type, "timestamp": iso_utc(now), "data": data}
