"""Settings, read once from KEYPORT_* environment variables and validated.

Each setting is declared once below: its type, default and bound. Its variable is
`KEYPORT_` + the field's name in capitals, an empty value leaves the default, and a refused
value names the variable (`SettingsError`). The class is a pydantic dataclass, so a
`Settings(...)` built directly, or changed with `dataclasses.replace`, is checked the same way
(pydantic's `ValidationError`, a `ValueError`). README.md's settings tables are tested against
this declaration (tests/unit/test_settings.py).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, ValidationError, model_validator
from pydantic.dataclasses import dataclass

from keyport.db.engine import async_url

ENV_PREFIX = "KEYPORT_"
DATABASE_FILE = "keyport.db"  # the SQLite database's name in the data directory
DEFAULT_PUBLIC_URL = "http://localhost:8000"
MIN_SECRET_KEY_LENGTH = 32
MAX_INT_SETTING = 1_000_000
MAX_EXPIRY_CHECK_INTERVAL = 60.0
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class SettingsError(ValueError):
    """A setting has a value Keyport cannot use; the message names it."""


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


# Refusals raised by the parsers below are the message after the variable's name.
def _flag(raw: object) -> object:
    if not isinstance(raw, str):
        return raw
    word = raw.strip().lower()
    if word in {"1", "true", "yes", "on"}:
        return True
    if word in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"must be true or false, not {word!r}")


def _networks(raw: object) -> object:
    """`10.0.0.1, 10.1.0.0/16, ::1` → networks."""
    if not isinstance(raw, str):
        return raw
    networks = []
    for item in raw.split(","):
        if item.strip():
            try:
                networks.append(ipaddress.ip_network(item.strip(), strict=False))
            except ValueError:
                raise ValueError(f": not an IP address or network: {item!r}") from None
    return tuple(networks)


def _database_url(raw: str) -> str:
    try:
        return async_url(raw)
    except ValueError as error:
        raise ValueError(f": {error}") from None


def _database_url_if_given(raw: str | None) -> str | None:
    return None if raw is None else _database_url(raw)


def find_data_directory(env: Mapping[str, str]) -> Path:
    """Where the SQLite database and the generated server secret live: KEYPORT_DATA_DIR,
    else $XDG_DATA_HOME/keyport (an absolute one, as the XDG spec asks), else
    ~/.local/share/keyport. Never the working directory: a folder a command happens to run
    in (or serves over HTTP) must not hold the server's secret."""
    chosen = env.get(env_name("data_dir"))
    if chosen:
        return Path(chosen).expanduser().absolute()
    xdg_data_home = env.get("XDG_DATA_HOME", "")
    if xdg_data_home and Path(xdg_data_home).is_absolute():
        return Path(xdg_data_home) / "keyport"
    home = env.get("HOME") or str(Path.home())
    return Path(home) / ".local" / "share" / "keyport"


def _public_url(raw: str) -> str:
    url = raw.strip().rstrip("/")
    parsed = urlsplit(url)
    if parsed.scheme not in {"http", "https"} or not parsed.netloc or parsed.query:
        raise ValueError(f"must be an http(s) URL, not {url!r}")
    return url


def _secret_key(raw: str | None) -> str | None:
    if raw is not None and len(raw) < MIN_SECRET_KEY_LENGTH:
        raise ValueError(
            f"must be at least {MIN_SECRET_KEY_LENGTH} characters "
            "(e.g. `python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        )
    return raw


def _at_most_a_minute(seconds: float) -> float:
    return min(seconds, MAX_EXPIRY_CHECK_INTERVAL)


def _none_if_empty(raw: object) -> object:
    return raw or None


def _seconds(default: float, at_least: float) -> Any:
    """A number (of seconds, minutes or hours) with its floor."""
    return Field(default, ge=at_least, allow_inf_nan=False)


def _count(default: int, at_least: int) -> Any:
    """A whole number with its floor, at most `MAX_INT_SETTING`."""
    return Field(default, ge=at_least, le=MAX_INT_SETTING)


Flag = Annotated[bool, BeforeValidator(_flag)]
Text = Annotated[str | None, BeforeValidator(_none_if_empty)]  # empty: None


@dataclass(frozen=True)
class Settings:
    # Unset: SQLite, `keyport.db` in the data directory (`database`, `data_path`).
    database_url: Annotated[Text, AfterValidator(_database_url_if_given)] = None
    # The SQLite database and the generated server secret; unset: find_data_directory's
    # choice. Only `keyport init` and `keyport serve` create it (mode 0700).
    data_dir: Text = None
    redis_url: Text = None
    # Seconds a cached key or user may be stale if evictions are lost.
    cache_ttl: float = _seconds(10.0, at_least=0.1)
    negative_cache_ttl: float = _seconds(2.0, at_least=0.0)
    invalidation_poll_interval: float = _seconds(0.2, at_least=0.01)
    # argon2id cost; tests lower it. 64 MiB and 3 passes is the OWASP-recommended floor.
    password_time_cost: int = _count(3, at_least=1)
    password_memory_cost: int = _count(65536, at_least=64)
    access_log: Flag = False
    # Dashboard sessions end after this long without a request, and after max hours anyway.
    session_idle_minutes: float = _seconds(30.0, at_least=1.0)
    session_max_hours: float = _seconds(12.0, at_least=0.1)
    # Dashboard cookies are Secure with the `__Host-` prefix: browsers keep them over https and
    # from http://localhost. false only for plain http under another host name (insecure).
    secure_cookies: Flag = True
    # Failed checks of a password or code allowed per (account, client place), per client place,
    # and per account from places it did not sign in from in 30 days, within the window; a
    # place is an IPv4 address or an IPv6 /64 (services/accounts/sign_in_limiter.py).
    sign_in_max_failures: int = _count(10, at_least=1)
    sign_in_ip_max_failures: int = _count(30, at_least=1)
    sign_in_account_max_failures: int = _count(20, at_least=1)
    sign_in_window_minutes: float = _seconds(15.0, at_least=0.1)
    # Usage per key is counted in memory and written every this many seconds: a crash loses
    # at most this much of it, a clean shutdown nothing (services/observability/usage_flush.py).
    usage_recording: Flag = True
    usage_flush_interval: float = _seconds(5.0, at_least=0.05)
    request_log: Flag = True  # one JSON line per request on stdout
    # Lines for the dashboard's and the docs' static files too (a page view fetches several).
    request_log_assets: Flag = False
    # Per key: `rate_limit` requests a minute, bursts to `rate_limit_burst` (0: no default
    # limit; a key's own limit still applies). Shared through Redis when it is configured.
    # Unset, the burst is twice the rate (or 200 when the rate is 0).
    rate_limit: int = _count(100, at_least=0)
    rate_limit_burst: int = _count(200, at_least=1)
    # User creations and slug changes per API key and hour, and invitations per dashboard user
    # and hour: each can tell whether an email or slug is taken in another company
    # (services/access/lookup_limits.py). 0: no such limit.
    user_write_limit: int = _count(100, at_least=0)
    # Failed authentications (401s) per client IP (IPv6: per /64) and minute before it is
    # refused (0: off).
    auth_failure_limit: int = _count(60, at_least=0)
    # Proxies whose X-Forwarded-For is believed (web/client_ip.py); none by default.
    trusted_proxies: Annotated[tuple[Network, ...], BeforeValidator(_networks)] = ()
    # The dashboard's address as people reach it: the base of invitation links.
    public_url: Annotated[str, AfterValidator(_public_url)] = DEFAULT_PUBLIC_URL
    # Seals TOTP secrets and signs sign-in challenges. None: generated once and kept in a
    # file (`secret_key_file`, else `keyport.secret` beside the SQLite database, or in the
    # data directory with PostgreSQL). Every process and host of one installation needs the
    # same value.
    secret_key: Annotated[Text, AfterValidator(_secret_key)] = None
    secret_key_file: Text = None
    # Webhooks (services/webhooks/delivery.py): private and loopback targets are refused
    # unless allowed; the worker looks for due deliveries this often (seconds).
    webhook_allow_private: Flag = False
    webhook_poll_interval: float = _seconds(1.0, at_least=0.05)
    # Seconds the worker's lease lasts: a crashed worker's process hands delivery over after
    # this long. A tick (up to 3 batches, 5 s timeout each) should end well inside it; one
    # that does not may let another process send again (at least once: same webhook-id).
    # It must be more than twice the poll interval.
    webhook_lease_seconds: float = _seconds(30.0, at_least=2.0)
    # Expiry reminders are looked for at start and this often (seconds; at most a minute:
    # a longer value is taken as a minute).
    expiry_check_interval: Annotated[float, AfterValidator(_at_most_a_minute)] = _seconds(
        30.0, at_least=0.05
    )
    # Where the workers of one server share their metrics
    # (services/observability/metrics_sharing.py);
    # `keyport serve --workers N` makes one per run. None: /metrics reports this process.
    metrics_dir: Text = None

    @property
    def data_path(self) -> Path:
        if self.data_dir:
            return Path(self.data_dir).expanduser().absolute()
        return find_data_directory(os.environ)

    @property
    def database(self) -> str:
        """The database's async URL: KEYPORT_DATABASE_URL, else SQLite in the data directory."""
        if self.database_url is not None:
            return self.database_url
        return async_url(f"sqlite:///{self.data_path / DATABASE_FILE}")

    @model_validator(mode="before")
    @classmethod
    def _burst_follows_the_rate(cls, given: Any) -> Any:
        kwargs = getattr(given, "kwargs", given)
        if isinstance(kwargs, dict) and kwargs.get("rate_limit_burst") is None:
            rate = kwargs.get("rate_limit")
            if rate is not None:
                kwargs["rate_limit_burst"] = 2 * _whole(rate) or 200
        return given

    @model_validator(mode="after")
    def _lease_outlasts_two_polls(self) -> Settings:
        if self.webhook_lease_seconds <= 2 * self.webhook_poll_interval:
            raise ValueError(
                f"{env_name('webhook_lease_seconds')} must be more than twice"
                f" {env_name('webhook_poll_interval')}"
            )
        return self

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """The settings whose `KEYPORT_*` variables are in `env`; unset or empty: the default."""
        given: dict[str, Any] = {
            field.name: env[env_name(field.name)]
            for field in dataclasses.fields(cls)
            if env.get(env_name(field.name))
        }
        try:
            return cls(**given)
        except ValidationError as error:
            raise SettingsError(_refusal(error.errors()[0])) from None


def _whole(raw: object) -> int:
    """The rate as the burst's default reads it; a rate that is no whole number is refused by
    its own field, so 0 will do for it here."""
    try:
        return int(float(raw))  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return 0


def _refusal(error: Any) -> str:
    """Pydantic's first error as today's message: the variable's name, then what is wrong."""
    if not error["loc"]:  # a rule across settings: its message names them
        return str(error["ctx"]["error"])
    name, kind, raw, ctx = (
        env_name(str(error["loc"][0])),
        error["type"],
        error["input"],
        error.get("ctx", {}),
    )
    if kind == "value_error":
        detail = str(ctx["error"])
        return f"{name}{detail}" if detail.startswith(":") else f"{name} {detail}"
    if kind == "greater_than_equal":
        return f"{name} must be at least {ctx['ge']}"
    if kind in {"less_than_equal", "int_from_float"} or (kind == "int_parsing" and _is_number(raw)):
        return f"{name} must be a whole number up to {MAX_INT_SETTING}"
    return f"{name} must be a number, not {raw!r}"


def _is_number(raw: object) -> bool:
    try:
        float(str(raw))
    except ValueError:
        return False
    return True
