"""The nginx configuration: `auth_request` to Keyport's `/v1/authorize` before every request.

nginx's auth_request keeps only the status of the answer (and turns any status but 2xx, 401
and 403 into 500), so Keyport also names a refusal's status and body in headers of its own;
`@keyport_refusal` rebuilds the exact answer from them — one check per client request, never
a second call. Paths map to scopes through case-insensitive regex locations, longest prefix
first (nginx tries regex locations in order), like Caddy's case-insensitive path matcher: a
path spelled in another case can never skip the scope its prefix needs.

nginx matches locations on its decoded, normalised `$uri` but forwards the raw request target,
so a target whose path some upstream reads differently (`\\`, `%2F`, `%2E`, dot segments,
doubled slashes) is refused before any location runs (spec.REFUSED_PATH). Client headers named
`X-Keyport-*` that Keyport sets or reserves are set or removed on every request, names with `_`
are dropped; stock nginx cannot delete the other names of that prefix (docs/gateway.md).
"""

from __future__ import annotations

import re
import textwrap

from keyport.proxy_config.spec import (
    CREDENTIAL_HEADER,
    DEFAULT_CREDENTIAL,
    ENCODED_SLASH,
    IDENTITY_HEADERS,
    RATE_LIMIT_HEADERS,
    REFUSAL_HEADERS,
    REFUSED_PATH,
    REFUSED_PATH_BODY,
    RESERVED_HEADERS,
    UNAVAILABLE_BODY,
    UNREADABLE_BODY,
    Endpoint,
    ProxySpec,
)

_EMPTY = '""'
_REFUSAL_STATUSES = (400, 401, 403, 429, 431, 503)
# Headers of Keyport's refusal the client sees, and the nginx variable each is kept in.
# (`WWW-Authenticate` is not among them: auth_request copies it onto a 401 itself, and a
# copy of ours would make two.)
_PASSED_ON = tuple(
    (name, name.lower().replace("-", "_"))
    for name in ("Retry-After", *RATE_LIMIT_HEADERS, "X-Request-Id")
)
_CREDENTIAL_SENT = "$keyport_credential_sent"


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
    values = {h: _variable(h) for h in IDENTITY_HEADERS} | {CREDENTIAL_HEADER: _CREDENTIAL_SENT}
    identity = "".join(
        f"        proxy_set_header {h} {values.get(h, _EMPTY)};\n"
        for h in (*kept, *RESERVED_HEADERS)
    )
    if not spec.forward_authorization:
        # The caller's key stays here: the upstream learns who called from X-Keyport-*.
        identity += f"        proxy_set_header Authorization {_EMPTY};\n"
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


def _bad_request_location() -> str:
    return f"""
    # A path some upstream could read as another one is refused before any check (the map
    # above). So is a request nginx itself will not read (two Authorization or Host lines, a
    # broken Host, a NUL or a broken escape in the path): a URI error_page answers those with
    # Keyport's JSON 400 instead of nginx's HTML page (a named location cannot: nginx has no
    # usable URI to run it with). A refused return carries its body, so it never loops here.
    # A path nginx cannot decode (`/%00`, `/%zz`, `..` above the root) is refused by nginx
    # before the check above can look at it: that is the 400 of a request it cannot read.
    error_page 400 /_keyport/bad-request;
    if ($keyport_refused_path) {{
        return 400 '{REFUSED_PATH_BODY}';
    }}
    location = /_keyport/bad-request {{
        internal;
        return 400 '{UNREADABLE_BODY}';
    }}
"""


def _path_map(spec: ProxySpec) -> str:
    """1 for a request target whose path is refused (the first matching regex decides)."""
    rows = [f'"~*{REFUSED_PATH}" 1;']
    allowed = spec.encoded_slash_allowed()
    if allowed is not None:
        rows.append(f'"~*{allowed}" 0;  # --allow-encoded-slash')
    rows.append(f'"~*{ENCODED_SLASH}" 1;')
    body = "".join(f"        {row}\n" for row in rows)
    return f"""
    # The raw request target is what the service receives: refuse spellings of a path that a
    # common parser reads as another path than the locations below matched.
    map $request_uri $keyport_refused_path {{
        default 0;
{body}    }}

    # The kind of credential Keyport checked, when its answer names none: an API key.
    map $keyport_credential {_CREDENTIAL_SENT} {{
        "" {DEFAULT_CREDENTIAL};
        default $keyport_credential;
    }}
"""


def _indent(text: str) -> str:
    return textwrap.indent(text, "    ")


def render_nginx(spec: ProxySpec) -> str:
    checks = [_authorize_location("/_keyport/authorize", spec, spec.default_scope())]
    guarded = [_guarded_location("/", "/_keyport/authorize", spec)]
    for number, rule in enumerate(spec.prefixed_rules(), start=1):
        name = f"/_keyport/authorize-{number}"
        checks.append(_authorize_location(name, spec, rule.scope))
        guarded.append(f"\n    # {rule.prefix} and below, in any case, need {rule.scope}")
        guarded.append(_guarded_location(f"~* ^{re.escape(rule.prefix)}(/|$)", name, spec))
    return f"""# Generated by: {spec.command_line("nginx")}
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
    # Header names with `_` are dropped, never passed on: a WSGI server reads X_Keyport_Key_Id
    # as X-Keyport-Key-Id.
    underscores_in_headers off;
    ignore_invalid_headers on;
{_path_map(spec)}
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
        # For the answers written here (a proxied answer keeps the service's Content-Type).
        default_type application/json;
{_indent(_bad_request_location() + "".join(checks) + _refusal_location() + "".join(guarded))}    }}
}}
"""
