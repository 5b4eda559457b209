"""Rendering pages: Jinja2 with autoescape on, and static files under versioned URLs."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from litestar import Response
from litestar.datastructures import Cookie

from keyport.web.admin.access import CSRF_FIELD, VISITOR, AnyRequest

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
STATIC_PATH = "/admin/static"
HTML = "text/html"


def _asset_urls() -> dict[str, str]:
    """`admin.css` → `/admin/static/admin.css?v=<content hash>`: cached long, never stale."""
    urls = {}
    for path in STATIC.iterdir():
        if path.is_file():
            version = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
            urls[path.name] = f"{STATIC_PATH}/{path.name}?v={version}"
    return urls


class Pages:
    def __init__(self) -> None:
        # Autoescape everything: key names and other user text can never become markup.
        self._env = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        assets = _asset_urls()
        self._env.globals["asset"] = assets.__getitem__
        self._env.globals["csrf_field"] = CSRF_FIELD

    def html(self, request: AnyRequest, template: str, **context: Any) -> str:
        visitor = request.state.get(VISITOR)
        return self._env.get_template(template).render(
            visitor=visitor,
            csrf_token=visitor.csrf_token if visitor else None,
            path=request.url.path,
            **context,
        )

    def render(
        self,
        request: AnyRequest,
        template: str,
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        cookies: list[Cookie] | None = None,
        **context: Any,
    ) -> Response[str]:
        return Response(
            self.html(request, template, **context),
            status_code=status,
            media_type=HTML,
            headers=headers,
            cookies=cookies,
        )
