"""Whether the base of invitation links looks wrong for the address a page was opened at.

Links start with KEYPORT_PUBLIC_URL (else the address `keyport serve` was started on). When
the dashboard is opened under another host or port, a link handed over would point elsewhere:
the team page says so. `localhost`, `127.0.0.1` and `::1` count as one host, and a default
port (80, 443) as none, since a proxy in front may leave it out of the Host header.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from keyport.web.admin.access import AnyRequest

_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
_DEFAULT_PORTS = frozenset({80, 443})


def _place(host: str | None, port: int | None) -> tuple[str, int | None]:
    name = (host or "").lower().strip("[]")
    return ("localhost" if name in _LOOPBACK else name), (None if port in _DEFAULT_PORTS else port)


def looks_elsewhere(link_base: str, request: AnyRequest) -> bool:
    """True when `link_base` names another host or port than the request's Host header."""
    host_header = request.headers.get("host")
    if not host_header:
        return False
    try:
        asked = urlsplit(f"//{host_header}")
        base = urlsplit(link_base)
        return _place(asked.hostname, asked.port) != _place(base.hostname, base.port)
    except ValueError:  # a malformed Host header or port: nothing to compare
        return False
