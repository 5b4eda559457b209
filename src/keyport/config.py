"""Settings, read once from KEYPORT_* environment variables and validated."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from keyport.db.engine import async_url

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./keyport.db"
DEFAULT_PUBLIC_URL = "http://localhost:8000"
MIN_SECRET_KEY_LENGTH = 32
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_INT_SETTING = 1_000_000


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


def _int(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    value = _float(env, name, default, minimum)
    if value != int(value) or value > MAX_INT_SETTING:
        raise SettingsError(f"{name} must be a whole number up to {MAX_INT_SETTING}")
    return int(value)


def _networks(env: Mapping[str, str], name: str) -> tuple[Network, ...]:
    """`10.0.0.1, 10.1.0.0/16, ::1` → networks."""
    networks = []
    for item in env.get(name, "").split(","):
        if item.strip():
            try:
                networks.append(ipaddress.ip_network(item.strip(), strict=False))
            except ValueError:
                raise SettingsError(f"{name}: not an IP address or network: {item!r}") from None
    return tuple(networks)


def _public_url(env: Mapping[str, str]) -> str:
    raw = (env.get("KEYPORT_PUBLIC_URL") or DEFAULT_PUBLIC_URL).strip().rstrip("/")
    parsed = urlsplit(raw)
    if parsed.scheme not in {"http", "https"} or not parsed.netloc or parsed.query:
        raise SettingsError(f"KEYPORT_PUBLIC_URL must be an http(s) URL, not {raw!r}")
    return raw


def _secret_key(env: Mapping[str, str]) -> str | None:
    raw = env.get("KEYPORT_SECRET_KEY") or None
    if raw is not None and len(raw) < MIN_SECRET_KEY_LENGTH:
        raise SettingsError(
            f"KEYPORT_SECRET_KEY must be at least {MIN_SECRET_KEY_LENGTH} characters "
            "(e.g. `python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        )
    return raw


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
    # Dashboard sessions end after this long without a request, and after max hours anyway.
    session_idle_minutes: float = 30.0
    session_max_hours: float = 12.0
    # Dashboard cookies are Secure with the `__Host-` prefix: browsers keep them over https and
    # from http://localhost. false only for plain http under another host name (insecure).
    secure_cookies: bool = True
    # Sign-in failures allowed per (account, client IP) and per client IP within the window;
    # per account, attempts are slowed (1 s doubling to the max) instead
    # (services/accounts/sign_in_limiter.py).
    sign_in_max_failures: int = 10
    sign_in_ip_max_failures: int = 30
    sign_in_window_minutes: float = 15.0
    sign_in_delay_seconds: float = 1.0
    sign_in_max_delay_seconds: float = 10.0
    # Usage per key is counted in memory and written every this many seconds: a crash loses
    # at most this much of it, a clean shutdown nothing (services/observability/usage_flush.py).
    usage_recording: bool = True
    usage_flush_interval: float = 5.0
    request_log: bool = True  # one JSON line per request on stdout
    # Per key: `rate_limit` requests a minute, bursts to `rate_limit_burst` (0: no default
    # limit; a key's own limit still applies). Shared through Redis when it is configured.
    rate_limit: int = 100
    rate_limit_burst: int = 200
    # User creations and slug changes per API key and hour: each can tell whether an email or
    # slug is taken in another company (services/access/lookup_limits.py). 0: no such limit.
    user_write_limit: int = 100
    # Failed authentications (401s) per client IP and minute before it is refused (0: off).
    auth_failure_limit: int = 60
    # Proxies whose X-Forwarded-For is believed (web/client_ip.py); none by default.
    trusted_proxies: tuple[Network, ...] = ()
    # The dashboard's address as people reach it: the base of invitation links.
    public_url: str = DEFAULT_PUBLIC_URL
    # Seals TOTP secrets and signs sign-in challenges. None: generated once and kept in a
    # file (`secret_key_file`, else `keyport.secret` beside the SQLite database or in the
    # working directory). Every process and host of one installation needs the same value.
    secret_key: str | None = None
    secret_key_file: str | None = None
    # Webhooks (services/webhooks/delivery.py): private and loopback targets are refused
    # unless allowed; the worker looks for due deliveries this often (seconds).
    webhook_allow_private: bool = False
    webhook_poll_interval: float = 1.0
    # Seconds the worker's lease lasts: a crashed worker's process hands delivery over after
    # this long. A tick (up to 3 batches, 5 s timeout each) should end well inside it; one
    # that does not may let another process send again (at least once: same webhook-id).
    webhook_lease_seconds: float = 30.0
    # Expiry reminders are looked for at start and this often (seconds; at most a minute).
    expiry_check_interval: float = 30.0
    # Where the workers of one server share their metrics
    # (services/observability/metrics_sharing.py);
    # `keyport serve --workers N` makes one per run. None: /metrics reports this process.
    metrics_dir: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        try:
            database_url = async_url(env.get("KEYPORT_DATABASE_URL") or DEFAULT_DATABASE_URL)
        except ValueError as error:
            raise SettingsError(f"KEYPORT_DATABASE_URL: {error}") from None
        rate_limit = _int(env, "KEYPORT_RATE_LIMIT", 100, 0)
        webhook_poll_interval = _float(env, "KEYPORT_WEBHOOK_POLL_INTERVAL", 1.0, 0.05)
        webhook_lease_seconds = _float(env, "KEYPORT_WEBHOOK_LEASE_SECONDS", 30.0, 2.0)
        if webhook_lease_seconds <= 2 * webhook_poll_interval:
            raise SettingsError(
                "KEYPORT_WEBHOOK_LEASE_SECONDS must be more than twice"
                " KEYPORT_WEBHOOK_POLL_INTERVAL"
            )
        return cls(
            database_url=database_url,
            redis_url=env.get("KEYPORT_REDIS_URL") or None,
            cache_ttl=_float(env, "KEYPORT_CACHE_TTL", 10.0, 0.1),
            negative_cache_ttl=_float(env, "KEYPORT_NEGATIVE_CACHE_TTL", 2.0, 0.0),
            invalidation_poll_interval=_float(env, "KEYPORT_INVALIDATION_POLL_INTERVAL", 0.2, 0.01),
            password_time_cost=int(_float(env, "KEYPORT_PASSWORD_TIME_COST", 3, 1)),
            password_memory_cost=int(_float(env, "KEYPORT_PASSWORD_MEMORY_COST", 65536, 64)),
            access_log=_bool(env, "KEYPORT_ACCESS_LOG", False),
            session_idle_minutes=_float(env, "KEYPORT_SESSION_IDLE_MINUTES", 30.0, 1.0),
            session_max_hours=_float(env, "KEYPORT_SESSION_MAX_HOURS", 12.0, 0.1),
            secure_cookies=_bool(env, "KEYPORT_SECURE_COOKIES", True),
            sign_in_max_failures=int(_float(env, "KEYPORT_SIGN_IN_MAX_FAILURES", 10, 1)),
            sign_in_ip_max_failures=_int(env, "KEYPORT_SIGN_IN_IP_MAX_FAILURES", 30, 1),
            sign_in_window_minutes=_float(env, "KEYPORT_SIGN_IN_WINDOW_MINUTES", 15.0, 0.1),
            sign_in_delay_seconds=_float(env, "KEYPORT_SIGN_IN_DELAY_SECONDS", 1.0, 0.0),
            sign_in_max_delay_seconds=_float(env, "KEYPORT_SIGN_IN_MAX_DELAY_SECONDS", 10.0, 0.0),
            usage_recording=_bool(env, "KEYPORT_USAGE_RECORDING", True),
            usage_flush_interval=_float(env, "KEYPORT_USAGE_FLUSH_INTERVAL", 5.0, 0.05),
            request_log=_bool(env, "KEYPORT_REQUEST_LOG", True),
            rate_limit=rate_limit,
            rate_limit_burst=_int(env, "KEYPORT_RATE_LIMIT_BURST", 2 * rate_limit or 200, 1),
            auth_failure_limit=_int(env, "KEYPORT_AUTH_FAILURE_LIMIT", 60, 0),
            user_write_limit=_int(env, "KEYPORT_USER_WRITE_LIMIT", 100, 0),
            trusted_proxies=_networks(env, "KEYPORT_TRUSTED_PROXIES"),
            public_url=_public_url(env),
            secret_key=_secret_key(env),
            secret_key_file=env.get("KEYPORT_SECRET_KEY_FILE") or None,
            webhook_allow_private=_bool(env, "KEYPORT_WEBHOOK_ALLOW_PRIVATE", False),
            webhook_poll_interval=webhook_poll_interval,
            webhook_lease_seconds=webhook_lease_seconds,
            expiry_check_interval=min(
                60.0, _float(env, "KEYPORT_EXPIRY_CHECK_INTERVAL", 30.0, 0.05)
            ),
            metrics_dir=env.get("KEYPORT_METRICS_DIR") or None,
        )
