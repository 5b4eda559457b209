"""Real test databases: an SQLite file per test, a fresh PostgreSQL database per session.

PostgreSQL comes from KEYPORT_TEST_POSTGRES_URL (CI sets it). Without it the PostgreSQL
variants skip locally, and fail under CI so that they can never silently not run.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from keyport.db.engine import async_url, create_engine
from keyport.db.migrate import upgrade_database
from keyport.db.tables import metadata

T = TypeVar("T")


def postgres_base_url() -> str:
    url = os.environ.get("KEYPORT_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("KEYPORT_TEST_POSTGRES_URL must be set under CI")
        pytest.skip("KEYPORT_TEST_POSTGRES_URL is not set")
    return async_url(url)


def redis_url() -> str:
    url = os.environ.get("KEYPORT_TEST_REDIS_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("KEYPORT_TEST_REDIS_URL must be set under CI")
        pytest.skip("KEYPORT_TEST_REDIS_URL is not set")
    return url


async def create_postgres_database() -> str:
    base = postgres_base_url()
    name = f"keyport_test_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(base, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await admin.dispose()
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url)
    try:
        await upgrade_database(engine)
    finally:
        await engine.dispose()
    return url


async def drop_postgres_database(url: str) -> None:
    name = make_url(url).database
    admin = create_async_engine(postgres_base_url(), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


async def truncate_all(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
            await connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    finally:
        await engine.dispose()


def run_blocking(work: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from synchronous code, even inside a running loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, work).result()


def dump_database(database_url: str, tmp_path: Path) -> bytes:
    """Every byte the database holds: the SQLite files, or a pg_dump of the database."""
    if database_url.startswith("sqlite"):
        path = Path(database_url.split("///", 1)[1])
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    url = make_url(database_url)
    dump = subprocess.run(
        [
            "pg_dump",
            "-h",
            url.host or "127.0.0.1",
            "-p",
            str(url.port or 5432),
            "-U",
            url.username or "postgres",
            url.database or "",
        ],
        capture_output=True,
        check=True,
        timeout=60,
    )
    return dump.stdout
