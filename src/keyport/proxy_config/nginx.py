"""The nginx configuration: `auth_request` to Keyport's `/v1/authorize` before every request.

nginx's auth_request keeps only the status of the answer (and turns any status but 2xx, 401
and 403 into 500), so Keyport also names a refusal's status and body in headers of its own;
`@keyport_refusal` rebuilds the exact answer from them — one check per client request, never
a second call. Paths map to scopes through case-insensitive regex locations, longest prefix
first (nginx tries regex locations in order), like Caddy's case-insensitive path matcher: a
path spelled in another case can never skip the scope its prefix needs.
"""

from __future__ import annotations

import re
import textwrap

from keyport.proxy_config.spec import (
    IDENTITY_HEADERS,
    RATE_LIMIT_HEADERS,
    REFUSAL_HEADERS,
    UNAVAILABLE_BODY,
    UNREADABLE_BODY,
    Endpoint,
    ProxySpec,
)

_EMPTY = '""'
_REFUSAL_STATUSES = (400, 401, 403, 429, 431, 503)
# Headers of Keyport's refusal the client sees, and the nginx variable each is kept in.
_PASSED_ON = tuple(
    (name, name.lower().replace("-", "_"))
    for name in ("WWW-Authenticate", "Retry-After", *RATE_LIMIT_HEADERS, "X-Request-Id")
)


def _variable(header: str) -> str:
    return "$keyport_" + header.lower().removeprefix("x-keyport-").replace("-", "_")


def _upstream_variable(header: str) -> str:
    return "$upstream_http_" + header.lower().replace("-", "_")


def _ssl(endpoint: Endpoint) -> str:
    if endpoint.scheme != "https":
        return ""
    return f"        proxy_ssl_server_name on;\n        proxy_ssl_name {endpoint.host};\n"


def _authorize_location(name: str, spec: ProxySpec, scope: str | None) -> str:
    query = f"?scope={scope}" if scope else ""
    return f"""
    location = {name} {{
        internal;
        proxy_pass {spec.keyport.scheme}://keyport/v1/authorize{query};
        # HEAD: the answer has no body to read (a refusal names its body in a header), so
        # nginx keeps the connection for the next check; after a GET it closes it unread.
        proxy_method HEAD;
        proxy_pass_request_body off;
        proxy_set_header Content-Length "";
        proxy_set_header Host {spec.keyport.host_port};
        proxy_set_header X-Forwarded-For $remote_addr;
        proxy_set_header X-Forwarded-Method $request_method;
        proxy_set_header X-Forwarded-Uri $request_uri;
        proxy_set_header Connection "";
        proxy_http_version 1.1;
        proxy_connect_timeout 2s;
        proxy_read_timeout 5s;
{_ssl(spec.keyport)}    }}
"""


def _guarded_location(match: str, check: str, spec: ProxySpec) -> str:
    kept = [*IDENTITY_HEADERS, *REFUSAL_HEADERS]
    keep = "".join(
        f"        auth_request_set {_variable(h)} {_upstream_variable(h)};\n" for h in kept
    ) + "".join(
        f"        auth_request_set $keyport_{var} {_upstream_variable(h)};\n"
        for h, var in _PASSED_ON
    )
    # Set (or, when empty, removed) on every request: a client can never send its own.
    identity = "".join(
        f"        proxy_set_header {h} {_variable(h) if h in IDENTITY_HEADERS else _EMPTY};\n"
        for h in kept
    )
    return f"""
    location {match} {{
        auth_request {check};
{keep}        error_page 401 403 500 = @keyport_refusal;
{identity}        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-For $remote_addr;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header Connection "";
        proxy_http_version 1.1;
        proxy_pass {spec.upstream.scheme}://upstream_service;
{_ssl(spec.upstream)}    }}
"""


def _refusal_location() -> str:
    headers = "".join(f"        add_header {h} $keyport_{var} always;\n" for h, var in _PASSED_ON)
    returns = "".join(
        f"        if ($keyport_refusal_status = {status}) {{\n"
        f"            return {status} $keyport_refusal_body;\n        }}\n"
        for status in _REFUSAL_STATUSES
    )
    return f"""
    # Keyport's refusal, exactly: status, JSON body and headers, from the one answer it gave.
    # No refusal status at all means Keyport could not be asked: 503, never a success.
    location @keyport_refusal {{
        default_type application/json;
{headers}{returns}        set $keyport_retry_after 5;
        return 503 '{UNAVAILABLE_BODY}';
    }}
"""


def _unreadable_location() -> str:
    return f"""
    # nginx refuses some requests itself while reading their headers, before any location or
    # check (two Authorization lines, two Host lines, a broken Host): the same 400 in JSON that
    # Keyport gives a request it cannot read, instead of nginx's HTML page.
    error_page 400 = @unreadable_request;
    location @unreadable_request {{
        default_type application/json;
        return 400 '{UNREADABLE_BODY}';
    }}
"""


def _indent(text: str) -> str:
    return textwrap.indent(text, "    ")


def render_nginx(spec: ProxySpec, command: str) -> str:
    checks = [_authorize_location("/_keyport/authorize", spec, spec.default_scope())]
    guarded = [_guarded_location("/", "/_keyport/authorize", spec)]
    for number, rule in enumerate(spec.prefixed_rules(), start=1):
        name = f"/_keyport/authorize-{number}"
        checks.append(_authorize_location(name, spec, rule.scope))
        guarded.append(f"\n    # {rule.prefix} and below, in any case, need {rule.scope}")
        guarded.append(_guarded_location(f"~* ^{re.escape(rule.prefix)}(/|$)", name, spec))
    return f"""# Generated by: {command}
# Run in the foreground, with its pid, temporary files and logs under DIR:
#   nginx -p DIR -c THIS_FILE
# Keyport must trust this proxy's address for X-Forwarded-For (KEYPORT_TRUSTED_PROXIES).
daemon off;
worker_processes 1;
pid nginx.pid;
error_log error.log warn;

events {{
    worker_connections 1024;
}}

http {{
    access_log access.log;
    client_body_temp_path client_body_temp;
    proxy_temp_path proxy_temp;
    fastcgi_temp_path fastcgi_temp;
    uwsgi_temp_path uwsgi_temp;
    scgi_temp_path scgi_temp;
    default_type application/octet-stream;
    server_tokens off;

    # Idle connections kept open to each side, per worker: at least the requests in flight,
    # or every request beyond them pays a new TCP connection (Keyport's most costly part).
    upstream keyport {{
        server {spec.keyport.host_port};
        keepalive 256;
        keepalive_requests 1000000;
    }}

    upstream upstream_service {{
        server {spec.upstream.host_port};
        keepalive 256;
        keepalive_requests 1000000;
    }}

    server {{
        listen {spec.listen.host_port};
{_indent(_unreadable_location() + "".join(checks) + _refusal_location() + "".join(guarded))}    }}
}}
"""
