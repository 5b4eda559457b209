"""A served process's log: an expected outage is one line with its error's class and message;
a bug keeps its traceback (web/log_lines.py)."""

from __future__ import annotations

import io
import logging

import redis.exceptions
from sqlalchemy.exc import OperationalError

from keyport.web.log_lines import OutageLines, describe


def written(error: BaseException) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(OutageLines())
    logger = logging.getLogger("test.log_lines")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise error
        except BaseException:
            logger.warning("writing usage failed; retrying on the next flush", exc_info=True)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_an_unreachable_database_is_one_line_naming_the_deepest_cause() -> None:
    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except ConnectionRefusedError as refused:
            raise OperationalError("SELECT 1", {}, refused) from refused
    except OperationalError as wrapped:
        error = wrapped

    assert written(error) == (
        "writing usage failed; retrying on the next flush"
        " (ConnectionRefusedError: [Errno 111] Connection refused)\n"
    )


def test_a_lost_redis_connection_is_one_line() -> None:
    line = written(redis.exceptions.ConnectionError("Connection closed by server."))
    assert line == (
        "writing usage failed; retrying on the next flush"
        " (ConnectionError: Connection closed by server.)\n"
    )


def test_a_bug_keeps_its_traceback() -> None:
    text = written(KeyError("no such field"))
    assert text.startswith("writing usage failed; retrying on the next flush\nTraceback")
    assert "KeyError: 'no such field'" in text


def test_a_message_is_cut_to_its_first_line() -> None:
    assert describe(TimeoutError("timed out\n(Background: see the manual)")) == (
        "TimeoutError: timed out"
    )
