"""A Django app guarded by Keyport, in one file (docs/python/django.md).

pip install keyport-client django gunicorn uvicorn
KEYPORT_URL=http://localhost:8000 gunicorn --workers 2 --bind 127.0.0.1:9000 django_app
KEYPORT_URL=http://localhost:8000 uvicorn django_app:asgi --port 9000   # the async stack
"""

import os
import secrets
from typing import Any

from django.conf import settings
from django.core.asgi import get_asgi_application
from django.core.wsgi import get_wsgi_application
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.http import require_GET, require_POST

from keyport_client import Identity
from keyport_client.django import require

settings.configure(
    ROOT_URLCONF=__name__,
    ALLOWED_HOSTS=["*"],
    SECRET_KEY=os.environ.get("DJANGO_SECRET_KEY", secrets.token_urlsafe(32)),
    MIDDLEWARE=["keyport_client.django.KeyportMiddleware"],  # first: nothing runs before it
    KEYPORT_URL=os.environ.get("KEYPORT_URL", "http://localhost:8000"),
    KEYPORT_SCOPES={"/orders": "orders:read"},  # every path under /orders needs orders:read
    KEYPORT_EXCLUDE=["/health"],  # asked about never: no credential needed
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


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@require_GET
def me(request: HttpRequest) -> JsonResponse:  # any valid key
    return JsonResponse(shown(request.keyport))


@require_GET
async def list_orders(request: HttpRequest) -> JsonResponse:  # async views: on both stacks
    return JsonResponse({"orders": [], "companyId": request.keyport.company_id})


@require_POST
@require("orders:write")  # asked in the same single question as orders:read
def create_order(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"createdBy": request.keyport.user_id}, status=201)


urlpatterns = [
    path("health", health),
    path("me", me),
    path("orders", list_orders),
    path("orders/new", create_order),  # a view's scope is for all its methods: a view of its own
]
application = get_wsgi_application()  # gunicorn django_app
asgi = get_asgi_application()  # uvicorn django_app:asgi
