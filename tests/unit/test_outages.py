"""Which errors mean "storage cannot answer now" (503) and which are bugs (500)."""

from __future__ import annotations

import sqlite3

import asyncpg.exceptions as pg
import redis.exceptions as redis_errors
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from keyport.db.outages import is_storage_unavailable


class Adapted(Exception):
    """Like SQLAlchemy's adapter around asyncpg's errors."""


def wrapped(cause: BaseException) -> DBAPIError:
    """An error as SQLAlchemy raises it: DBAPIError(orig=adapter) from adapter from cause."""
    try:
        try:
            raise cause
        except BaseException as inner:
            raise Adapted(str(inner)) from inner
    except Adapted as adapted:
        error = DBAPIError("SELECT 1", {}, adapted)
        error.__cause__ = adapted
        return error


def test_outages_of_every_backend_are_storage_unavailable() -> None:
    for error in [
        ConnectionRefusedError(111, "refused"),
        TimeoutError(),
        OperationalError("SELECT 1", {}, Exception("database is locked")),
        sqlite3.OperationalError("unable to open database file"),
        wrapped(pg.CannotConnectNowError("the database system is shutting down")),
        wrapped(pg.AdminShutdownError("terminating connection due to administrator command")),
        wrapped(pg.ConnectionDoesNotExistError("connection was closed in the middle")),
        wrapped(pg.TooManyConnectionsError("sorry, too many clients already")),
        wrapped(pg.InterfaceError("connection is closed")),
        wrapped(ConnectionResetError()),
        redis_errors.ConnectionError("Connection refused"),
        redis_errors.TimeoutError("Timeout reading from socket"),
    ]:
        assert is_storage_unavailable(error), repr(error)


def test_bugs_and_bad_data_are_not_outages() -> None:
    for error in [
        ValueError("bad"),
        KeyError("x"),
        IntegrityError("INSERT", {}, Exception("duplicate key")),
        wrapped(pg.InterfaceError("cannot perform operation: another operation is in progress")),
        wrapped(pg.DataError("invalid input for query argument $1")),
    ]:
        assert not is_storage_unavailable(error), repr(error)
