"""Typed results: the key object of docs/contract.md §8 in snake_case, and who `/v1/authorize`
says is calling."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


@dataclass(frozen=True, slots=True)
class Key:
    id: str
    name: str | None
    status: str  # active | deactivated | expired | revoked
    scopes: list[str]
    allowed_ips: list[str]
    rate_limit: int | None
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    hint: str

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Key:
        return cls(**_key_fields(body))


@dataclass(frozen=True, slots=True)
class CreatedKey(Key):
    key: str = ""  # the full key: shown this once, store it now

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> CreatedKey:
        return cls(**_key_fields(body), key=body["key"])

    def __repr__(self) -> str:  # never print the secret by accident
        return f"CreatedKey(id={self.id!r}, name={self.name!r}, expires_at={self.expires_at!r})"


def _key_fields(body: dict[str, Any]) -> dict[str, Any]:
    created, expires = _moment(body["createdAt"]), _moment(body["expiresAt"])
    assert created is not None and expires is not None
    return {
        "id": body["id"],
        "name": body.get("name"),
        "status": body["status"],
        "scopes": list(body.get("scopes") or []),
        "allowed_ips": list(body.get("allowedIps") or []),
        "rate_limit": body.get("rateLimit"),
        "created_at": created,
        "expires_at": expires,
        "last_used_at": _moment(body.get("lastUsedAt")),
        "hint": body["hint"],
    }


@dataclass(frozen=True, slots=True)
class KeyPage:
    keys: list[Key]
    next_cursor: str | None

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> KeyPage:
        return cls([Key.from_json(k) for k in body["keys"]], body.get("nextCursor"))


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a request comes from, as `/v1/authorize` answers: the credential's id (a key's, or
    a personal access token's), its company, the acting user and their role, the credential's
    own scopes as stored (`["*"]`: full access) and expiry, and which kind of credential it is
    (`"api_key"` or `"personal_access_token"`). `credits_remaining` is the key's balance after
    this request, for a key with credits (else None)."""

    key_id: str
    company_id: str
    user_id: str
    user_role: str
    scopes: list[str]
    expires_at: datetime | None
    credential: str = "api_key"
    credits_remaining: int | None = None

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Identity:
        credits = body.get("credits")
        remaining = credits.get("remaining") if isinstance(credits, dict) else None
        return cls(
            key_id=body["keyId"],
            company_id=body["companyId"],
            user_id=body["userId"],
            user_role=body["userRole"],
            scopes=list(body.get("scopes") or []),
            expires_at=_moment(body.get("expiresAt")),
            # Keyport answers without the field where API keys are its only credential.
            credential=body.get("credential") or "api_key",
            credits_remaining=remaining if isinstance(remaining, int) else None,
        )


# The name `Keyport.authorize()` has returned it under since release 2.
Authorization = Identity
