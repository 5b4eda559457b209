"""Telling "storage cannot answer now" from a bug: the first becomes a 503 that heals by
itself when the database or Redis is back, the second a 500.

Drivers wrap each other's errors (SQLAlchemy around asyncpg around OSError), so the whole
chain of causes is looked at.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import asyncpg.exceptions as pg
import redis.exceptions as redis_errors
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, unreachable; ConnectionError is one
    TimeoutError,
    OperationalError,
    PoolTimeout,
    sqlite3.OperationalError,  # locked, cannot open
    pg.PostgresConnectionError,  # connection lost or refused
    pg.OperatorInterventionError,  # shutting down, starting up, restarted
    pg.InsufficientResourcesError,  # too many connections, disk full
    pg.DeadlockDetectedError,  # transient: the client may simply retry
    pg.SerializationError,
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.BusyLoadingError,
)
_MAX_DEPTH = 16


def causes(error: BaseException) -> Iterator[BaseException]:
    """The error, what it wraps (`orig`), its causes and contexts, each once."""
    pending: list[BaseException] = [error]
    seen: set[int] = set()
    while pending and len(seen) < _MAX_DEPTH:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for link in (getattr(current, "orig", None), current.__cause__, current.__context__):
            if isinstance(link, BaseException):
                pending.append(link)


def is_storage_unavailable(error: BaseException) -> bool:
    """The database or Redis could not answer (down, restarting, unreachable, overloaded)."""
    for link in causes(error):
        if isinstance(link, _UNAVAILABLE):
            return True
        if isinstance(link, DBAPIError) and link.connection_invalidated:
            return True
        if isinstance(link, pg.InterfaceError) and "clos" in str(link):
            return True  # "connection is closed", "pool is closing"
    return False
