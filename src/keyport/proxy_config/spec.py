"""What a generated proxy configuration is made of, parsed and checked once for both proxies.

Everything here ends up inside a configuration file, so every value is held to a strict
grammar (ASCII only, no quote, space, `;`, `{`, `}`, `$`, `%` or `#` anywhere): a host, port,
path prefix or URL can never close a block, start a directive or a comment. An IPv6 address
is written in brackets and without a zone id (`fe80::1%eth0` is refused).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from keyport.domain.scopes import is_required_scope

# One path segment of a prefix (RFC 3986 pchar without quotes, `;`, `$`, `%`, `!`, `&`, `=`, …).
_SEGMENT = r"[A-Za-z0-9._~@:+-]+"
_PREFIX = re.compile(rf"/\Z|(?:/{_SEGMENT})+/?\Z", re.ASCII)
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST_NAME = re.compile(rf"(?=.{{1,253}}\Z){_LABEL}(?:\.{_LABEL})*\Z", re.ASCII)
_HOST = r"\[(?P<v6>[0-9A-Fa-f:.]{2,45})\]|(?P<name>[A-Za-z0-9.-]{1,253})"
_LISTEN = re.compile(rf"(?:{_HOST}):(?P<port>[0-9]{{1,5}})\Z", re.ASCII)
_URL = re.compile(
    rf"(?P<scheme>https?)://(?:{_HOST})(?::(?P<port>[0-9]{{1,5}}))?/?\Z", re.ASCII | re.IGNORECASE
)

# The identity /v1/authorize answers with, copied onto the request sent upstream.
CREDENTIAL_HEADER = "X-Keyport-Credential"
# The kind of credential when Keyport's answer does not name one: API keys are all it checks.
DEFAULT_CREDENTIAL = "api_key"
IDENTITY_HEADERS = (
    "X-Keyport-Key-Id",
    "X-Keyport-Company-Id",
    "X-Keyport-User-Id",
    "X-Keyport-User-Role",
    "X-Keyport-Scopes",
    CREDENTIAL_HEADER,
)
# A refusal's status and body in headers of their own (web/gate/express.py), for nginx.
REFUSAL_HEADERS = ("X-Keyport-Refusal-Status", "X-Keyport-Refusal-Body")
# Names Keyport may send in a later release; never passed on from a client either.
RESERVED_HEADERS = ("X-Keyport-Credits-Remaining",)
RATE_LIMIT_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")
UNAVAILABLE_BODY = (
    '{"statusCode":503,"message":"Service Unavailable","error":"Service Unavailable"}'
)
# A request the proxy will not read at all (nginx: two Authorization or Host lines, a broken
# Host): what Keyport itself answers a request its HTTP parser cannot read (web/http_protocol.py).
UNREADABLE_BODY = '{"statusCode":400,"message":"Invalid HTTP request","error":"Bad Request"}'
# A path in a spelling some upstream could read as another path (web/paths.py's answer).
REFUSED_PATH_BODY = '{"statusCode":400,"message":"Invalid request path","error":"Bad Request"}'

# Request targets (as the proxy forwards them: path, then the query) whose path part holds a
# spelling that a common parser reads as another path than the proxy matched: a backslash
# (WHATWG URL parsing reads it as `/`), `;` (Java servlet containers cut `;params` off a
# segment), `#`, a control character or space, an encoded `\`, `.`
# or control character (WHATWG reads `%2e` as a dot; ASGI and WSGI servers decode them all),
# doubled slashes and `.`/`..` segments (resolved by some parsers and not others). An encoded
# slash counts as a slash here, so that it can never hide a dot segment. Case-insensitive, in
# the syntax both PCRE (nginx) and RE2 (Caddy) read.
REFUSED_PATH = (
    r"^[^?]*?(?:[\x00-\x20\x7f\x5c\x23\x3b]|%(?:5c|2e|[01][0-9a-f]|7f)"
    r"|(?:/|%2f)(?:/|%2f)|(?:/|%2f)\.\.?(?:/|%2f|\?|$))"
)
# An encoded slash in the path part: a percent-decoding server reads it as a separator that
# the WHATWG parser does not, so it is refused except under the prefixes the operator allows.
ENCODED_SLASH = r"^[^?]*?%2f"


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
    # Prefixes under which an encoded slash (`%2F`) is passed on, e.g. for ids that carry one.
    encoded_slash_prefixes: tuple[str, ...] = ()
    # Whether the caller's Authorization reaches the upstream; by default it stays here.
    forward_authorization: bool = False

    def default_scope(self) -> str | None:
        """The scope of the prefix `/`, which every path not matched otherwise needs."""
        return next((r.scope for r in self.rules if r.prefix == "/"), None)

    def prefixed_rules(self) -> tuple[ScopeRule, ...]:
        return tuple(r for r in self.rules if r.prefix != "/")

    def encoded_slash_allowed(self) -> str | None:
        """A regex for the request targets under an allowed prefix, or None."""
        if not self.encoded_slash_prefixes:
            return None
        prefixes = "|".join(re.escape(p.rstrip("/")) + "/" for p in self.encoded_slash_prefixes)
        return f"^(?:{prefixes})"

    def command_line(self, proxy: str) -> str:
        """The command that prints this configuration, from the checked values alone."""
        words = ["keyport", "proxy-config", proxy, "--listen", self.listen.host_port]
        words += ["--keyport", self.keyport.url, "--upstream", self.upstream.url]
        for rule in sorted(self.rules, key=lambda r: r.prefix):
            words += ["--scope", f"{rule.prefix}={rule.scope}"]
        for prefix in self.encoded_slash_prefixes:
            words += ["--allow-encoded-slash", prefix]
        if self.forward_authorization:
            words.append("--forward-authorization")
        return " ".join(words)


def _host(v6: str | None, name: str | None, what: str, text: str) -> str:
    if v6 is not None:
        try:
            return str(ipaddress.IPv6Address(v6))
        except ValueError:
            raise SpecError(f"{what}: {text!r} holds no valid IPv6 address") from None
    assert name is not None
    try:
        return str(ipaddress.IPv4Address(name))
    except ValueError:
        if _HOST_NAME.match(name) and not name.replace(".", "").isdigit():
            return name.lower()
    raise SpecError(f"{what}: {text!r} is not a host name, IPv4 or [IPv6] address")


def _port(text: str | None, default: int, what: str, value: str) -> int:
    if text is None:
        return default
    port = int(text)
    if not 0 < port < 65536:
        raise SpecError(f"{what}: {value!r} has no port between 1 and 65535")
    return port


def parse_listen(text: str) -> Endpoint:
    """`HOST:PORT`, `[v6]:PORT`."""
    found = _LISTEN.match(text)
    if found is None:
        raise SpecError(f"--listen: {text!r} is not HOST:PORT (an IPv6 address in brackets)")
    host = _host(found["v6"], found["name"], "--listen", text)
    return Endpoint("http", host, _port(found["port"], 0, "--listen", text))


def parse_url(text: str, option: str) -> Endpoint:
    """`http(s)://HOST[:PORT]` without a path, query, user or fragment."""
    found = _URL.match(text)
    if found is None:
        raise SpecError(
            f"{option}: {text!r} must be an http:// or https:// URL with a host and port only"
        )
    scheme = found["scheme"].lower()
    host = _host(found["v6"], found["name"], option, text)
    default_port = 443 if scheme == "https" else 80
    return Endpoint(scheme, host, _port(found["port"], default_port, option, text))


def parse_prefix(text: str, option: str) -> str:
    """A path prefix: `/` or whole segments of plain path characters, no `.` or `..`."""
    segments = text.split("/")
    if not _PREFIX.match(text) or any(s in {".", ".."} for s in segments):
        raise SpecError(f"{option}: {text!r} is not a path prefix like /orders")
    return text.rstrip("/") or "/"


def parse_rule(text: str) -> ScopeRule:
    """`PATH_PREFIX=SCOPE`."""
    prefix, separator, scope = text.partition("=")
    if not separator:
        raise SpecError(f"--scope: {text!r} is not PATH_PREFIX=SCOPE with a path like /orders")
    try:
        prefix = parse_prefix(prefix, "--scope")
    except SpecError:
        raise SpecError(
            f"--scope: {text!r} is not PATH_PREFIX=SCOPE with a path like /orders"
        ) from None
    if not is_required_scope(scope) or not scope.isascii():
        raise SpecError(f"--scope: {scope!r} is not a scope of the form name:action")
    return ScopeRule(prefix, scope)


def build_spec(
    listen: str,
    keyport: str,
    upstream: str,
    rules: tuple[str, ...],
    encoded_slash_prefixes: tuple[str, ...] = (),
    forward_authorization: bool = False,
) -> ProxySpec:
    parsed = [parse_rule(rule) for rule in rules]
    prefixes = [rule.prefix for rule in parsed]
    duplicates = sorted({p for p in prefixes if prefixes.count(p) > 1})
    if duplicates:
        raise SpecError(f"--scope: {duplicates[0]} is given more than once")
    ordered = tuple(sorted(parsed, key=lambda rule: (-len(rule.prefix), rule.prefix)))
    allowed = tuple(
        dict.fromkeys(parse_prefix(p, "--allow-encoded-slash") for p in encoded_slash_prefixes)
    )
    return ProxySpec(
        parse_listen(listen),
        parse_url(keyport, "--keyport"),
        parse_url(upstream, "--upstream"),
        ordered,
        allowed,
        forward_authorization,
    )
