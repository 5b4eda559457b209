"""Settings, read once from KEYPORT_* environment variables and validated."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from keyport.db.engine import async_url

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./keyport.db"


class SettingsError(ValueError):
    """A setting has a value Keyport cannot use; the message names it."""


def _float(env: Mapping[str, str], name: str, default: float, minimum: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, not {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be true or false, not {raw!r}")


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    cache_ttl: float = 10.0  # seconds a cached key or user may be stale if evictions are lost
    negative_cache_ttl: float = 2.0
    invalidation_poll_interval: float = 0.2
    # argon2id cost; tests lower it. 64 MiB and 3 passes is the OWASP-recommended floor.
    password_time_cost: int = 3
    password_memory_cost: int = 65536
    access_log: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        try:
            database_url = async_url(env.get("KEYPORT_DATABASE_URL") or DEFAULT_DATABASE_URL)
        except ValueError as error:
            raise SettingsError(f"KEYPORT_DATABASE_URL: {error}") from None
        return cls(
            database_url=database_url,
            redis_url=env.get("KEYPORT_REDIS_URL") or None,
            cache_ttl=_float(env, "KEYPORT_CACHE_TTL", 10.0, 0.1),
            negative_cache_ttl=_float(env, "KEYPORT_NEGATIVE_CACHE_TTL", 2.0, 0.0),
            invalidation_poll_interval=_float(env, "KEYPORT_INVALIDATION_POLL_INTERVAL", 0.2,
                                              0.01),
            password_time_cost=int(_float(env, "KEYPORT_PASSWORD_TIME_COST", 3, 1)),
            password_memory_cost=int(_float(env, "KEYPORT_PASSWORD_MEMORY_COST", 65536, 8)),
            access_log=_bool(env, "KEYPORT_ACCESS_LOG", False),
        )
