"""A Flask app guarded by Keyport (docs/python/flask.md).

pip install keyport-client flask gunicorn
KEYPORT_URL=http://localhost:8000 gunicorn --workers 2 --bind 127.0.0.1:9000 flask_app:app
"""

import os
from typing import Any

from flask import Flask, g

from keyport_client import Identity
from keyport_client.flask import Keyport

app = Flask(__name__)
keyport = Keyport(
    app,
    os.environ.get("KEYPORT_URL", "http://localhost:8000"),
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
def me() -> dict[str, Any]:  # any valid key
    return shown(g.keyport)


@app.get("/orders")
def list_orders() -> dict[str, Any]:
    return {"orders": [], "companyId": g.keyport.company_id}


@app.post("/orders")
@keyport.require("orders:write")  # asked in the same single question as orders:read
def create_order() -> tuple[dict[str, Any], int]:
    return {"createdBy": g.keyport.user_id}, 201
