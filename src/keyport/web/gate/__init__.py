"""The gate in front of the framework: every request's checks, declared once as a pipeline
(`pipeline.py`), walked by two drivers — the ASGI middleware (`asgi_driver.py`) and the
express lane the HTTP server calls before it builds an ASGI cycle (`express.py`)."""

from keyport.web.gate.admission import ADMITS, ANY_CREDENTIAL, ASKED_SCOPES, SIGNATURE, Admission
from keyport.web.gate.asgi_driver import ApiGate
from keyport.web.gate.check import ASGIApp, ExpressAnswer, FastRoute, Message, Receive, Scope, Send
from keyport.web.gate.express import REFUSAL_BODY, REFUSAL_STATUS, ExpressMemo
from keyport.web.gate.reading import HSTS
from keyport.web.gate.request_ids import new_request_id
from keyport.web.gate.steps import MAX_HEADER_BYTES

__all__ = [
    "ADMITS",
    "ANY_CREDENTIAL",
    "ASKED_SCOPES",
    "HSTS",
    "MAX_HEADER_BYTES",
    "REFUSAL_BODY",
    "REFUSAL_STATUS",
    "SIGNATURE",
    "ASGIApp",
    "Admission",
    "ApiGate",
    "ExpressAnswer",
    "ExpressMemo",
    "FastRoute",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "new_request_id",
]
