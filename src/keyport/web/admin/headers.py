"""Security headers on every dashboard response, error pages and static files included."""

from __future__ import annotations

from keyport.web.gate import ASGIApp, Message, Receive, Scope, Send

# No inline script or style anywhere: everything comes from /admin/static.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
]
# Pages show private data: no cache keeps them unless a response says otherwise (static files).
_NO_STORE = (b"cache-control", b"no-store")


def security_headers(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        # HSTS is the gate's: it knows the scheme a trusted proxy forwarded.
        extra = _HEADERS

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                names = {name.lower() for name, _ in headers}
                headers.extend(h for h in [*extra, _NO_STORE] if h[0] not in names)
                message["headers"] = headers
            await send(message)

        await app(scope, receive, send_with_headers)

    return middleware
