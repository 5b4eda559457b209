"""What a generated proxy configuration is made of, parsed and checked once for both proxies.

Everything here ends up inside a configuration file, so every value is held to a strict
character set: a path prefix or URL can never close a block or start a directive.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from keyport.domain.scopes import is_required_scope

# Path characters (RFC 3986 pchar without quotes, `;`, `$`, `%`): safe in both config files.
_PREFIX = re.compile(r"/[A-Za-z0-9._~@:+/-]*\Z")
_HOST = re.compile(r"[A-Za-z0-9.-]+\Z")

# The identity /v1/authorize answers with, copied onto the request sent upstream.
IDENTITY_HEADERS = (
    "X-Keyport-Key-Id",
    "X-Keyport-Company-Id",
    "X-Keyport-User-Id",
    "X-Keyport-User-Role",
    "X-Keyport-Scopes",
)
# A refusal's status and body in headers of their own (web/gate.py), for nginx.
REFUSAL_HEADERS = ("X-Keyport-Refusal-Status", "X-Keyport-Refusal-Body")
RATE_LIMIT_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")
UNAVAILABLE_BODY = (
    '{"statusCode":503,"message":"Service Unavailable","error":"Service Unavailable"}'
)
# A request the proxy will not read at all (nginx: two Authorization or Host lines, a broken
# Host): what Keyport itself answers a request its HTTP parser cannot read (web/http_protocol.py).
UNREADABLE_BODY = '{"statusCode":400,"message":"Invalid HTTP request","error":"Bad Request"}'


class SpecError(ValueError):
    """A value the configuration cannot be built from; the message is for the operator."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where to connect: scheme, host and port (no path)."""

    scheme: str
    host: str
    port: int

    @property
    def host_port(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host_port}"


@dataclass(frozen=True, slots=True)
class ScopeRule:
    prefix: str  # "/" or a path without a trailing slash
    scope: str


@dataclass(frozen=True, slots=True)
class ProxySpec:
    listen: Endpoint
    keyport: Endpoint
    upstream: Endpoint
    rules: tuple[ScopeRule, ...]  # longest prefix first

    def default_scope(self) -> str | None:
        """The scope of the prefix `/`, which every path not matched otherwise needs."""
        return next((r.scope for r in self.rules if r.prefix == "/"), None)

    def prefixed_rules(self) -> tuple[ScopeRule, ...]:
        return tuple(r for r in self.rules if r.prefix != "/")


def _host(text: str, what: str) -> str:
    bare = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        if _HOST.match(bare):
            return bare
    raise SpecError(f"{what}: {text!r} is not a host name or IP address")


def parse_listen(text: str) -> Endpoint:
    """`HOST:PORT`, `[v6]:PORT`."""
    host, separator, port = text.rpartition(":")
    if not separator or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SpecError(f"--listen: {text!r} is not HOST:PORT")
    return Endpoint("http", _host(host, "--listen"), int(port))


def parse_url(text: str, option: str) -> Endpoint:
    """`http(s)://HOST[:PORT]` without a path."""
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise SpecError(f"{option}: {text!r} is not a URL") from None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise SpecError(f"{option}: {text!r} must be an http:// or https:// URL")
    if parts.path not in {"", "/"} or parts.query or parts.fragment or parts.username:
        raise SpecError(f"{option}: {text!r} must not have a path, query or user")
    default_port = 443 if parts.scheme == "https" else 80
    return Endpoint(parts.scheme, _host(parts.hostname, option), port or default_port)


def parse_rule(text: str) -> ScopeRule:
    """`PATH_PREFIX=SCOPE`."""
    prefix, separator, scope = text.partition("=")
    if not separator or not _PREFIX.match(prefix) or "//" in prefix:
        raise SpecError(f"--scope: {text!r} is not PATH_PREFIX=SCOPE with a path like /orders")
    if not is_required_scope(scope):
        raise SpecError(f"--scope: {scope!r} is not a scope of the form name:action")
    return ScopeRule(prefix.rstrip("/") or "/", scope)


def build_spec(listen: str, keyport: str, upstream: str, rules: tuple[str, ...]) -> ProxySpec:
    parsed = [parse_rule(rule) for rule in rules]
    prefixes = [rule.prefix for rule in parsed]
    duplicates = sorted({p for p in prefixes if prefixes.count(p) > 1})
    if duplicates:
        raise SpecError(f"--scope: {duplicates[0]} is given more than once")
    ordered = tuple(sorted(parsed, key=lambda rule: (-len(rule.prefix), rule.prefix)))
    return ProxySpec(
        parse_listen(listen),
        parse_url(keyport, "--keyport"),
        parse_url(upstream, "--upstream"),
        ordered,
    )
