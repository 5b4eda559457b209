"""A FastAPI app guarded by Keyport (docs/python/fastapi.md).

pip install keyport-client fastapi uvicorn
KEYPORT_URL=http://localhost:8000 uvicorn fastapi_app:app --port 9000
"""

import os
from typing import Any

from fastapi import FastAPI, Request

from keyport_client import Identity
from keyport_client.asgi import KeyportMiddleware
from keyport_client.fastapi import Caller, require

app = FastAPI()
app.add_middleware(
    KeyportMiddleware,
    keyport_url=os.environ.get("KEYPORT_URL", "http://localhost:8000"),
    scopes={"/orders": "orders:read"},  # every path under /orders needs orders:read
    exclude=["/health"],  # asked about never: no credential needed
)


def shown(caller: Identity) -> dict[str, Any]:
    return {
        "keyId": caller.key_id,
        "companyId": caller.company_id,
        "userId": caller.user_id,
        "userRole": caller.user_role,
        "scopes": caller.scopes,
        "expiresAt": caller.expires_at.isoformat() if caller.expires_at else None,
        "credential": caller.credential,
    }


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/me")
def me(caller: Caller) -> dict[str, Any]:  # any valid key
    return shown(caller)


@app.get("/orders")
async def list_orders(request: Request) -> dict[str, Any]:
    caller: Identity = request.state.keyport  # the same identity, without a dependency
    return {"orders": [], "companyId": caller.company_id}


@app.post("/orders", status_code=201)
def create_order(caller: Identity = require("orders:write")) -> dict[str, Any]:
    # Asked in the same single question as the path's orders:read.
    return {"createdBy": caller.user_id}
