"""The ASGI entry point for uvicorn workers: settings from the environment, then the app."""

from __future__ import annotations

import os

from keyport.bootstrap import build_container
from keyport.config import Settings
from keyport.web.app import create_app
from keyport.web.gate import ApiGate


def create_app_from_env() -> ApiGate:
    return create_app(build_container(Settings.from_env(os.environ)))
