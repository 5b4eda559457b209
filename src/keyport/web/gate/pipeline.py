"""The order of a request's checks, declared once; both drivers walk this list.

Every request to an API path passes these steps in this order, and the first that refuses
answers. Each step is one implementation with two faces (web/gate/check.py): the ASGI path
(web/gate/asgi_driver.py) awaits `run` of each in turn; the express lane (web/gate/express.py)
asks `now` of each and hands the request to the ASGI path as soon as one cannot say without
I/O. Both therefore answer alike by construction.

To add a step, write a `Check` (web/gate/steps.py) and put it in its place below: nothing
else changes.
"""

from __future__ import annotations

from keyport.services.access.authentication import Authenticator
from keyport.web.gate.check import ASGIApp, Check
from keyport.web.gate.steps import (
    ActingUser,
    Allowlist,
    Budget,
    CanonicalPath,
    ClientIpBlock,
    Credential,
    CredentialKindRefusals,
    Credits,
    DuplicateHeaders,
    HeaderSize,
    Route,
    Scopes,
)
from keyport.web.throttling import Throttle


def request_pipeline(
    app: ASGIApp, authenticator: Authenticator, throttle: Throttle
) -> tuple[Check, ...]:
    return (
        HeaderSize(),  # 431: headers too large to read further (every path)
        DuplicateHeaders(),  # 1. a second Authorization or user header (400)
        CanonicalPath(),  # 2. a path not in its canonical form (400, every path)
        ClientIpBlock(throttle),  # 3. an address blocked for failed authentications (429)
        Credential(authenticator, throttle),  # 4. the credential (401)
        CredentialKindRefusals(),  # 5. what the credential's kind may never do (403)
        Allowlist(),  # 6. the credential's IP allowlist (403)
        Scopes(),  # 7. the scopes the route declares (403)
        Budget(throttle),  # 8. the rate limit (429)
        ActingUser(authenticator),  # 9. the acting user, where the route needs one (400/403)
        Credits(),  # 10. credits (429)
        Route(app),  # 11. the answer: a fast route's, else the framework's
    )
