"""A constraint of the database refusing a write becomes a domain error, never a 500.

The services check what they can first (email, slug, owner: repositories.py names those
precisely); whatever still reaches a constraint — a race, a rule only the schema knows — is
answered as the caller's problem: 409 when the write conflicts with stored data (unique,
foreign key), 400 when the data itself breaks a rule (not null, check).
"""

from __future__ import annotations

import sqlite3

import asyncpg.exceptions as pg
from sqlalchemy.exc import IntegrityError

from keyport.db.outages import causes
from keyport.domain.errors import Conflict, KeyportError, ValidationFailed

CONFLICT = "The change conflicts with data stored meanwhile"
REFUSED = "breaks a rule of the stored data"
_INVALID_PG = (pg.NotNullViolationError, pg.CheckViolationError)
_INVALID_SQLITE = ("NOT NULL constraint failed", "CHECK constraint failed")


def as_domain_error(error: BaseException) -> KeyportError | None:
    """The domain error an integrity violation stands for; None for any other error."""
    if isinstance(error, KeyportError):
        return None  # already said precisely (repositories.py), keep it
    found = [e for e in causes(error) if isinstance(e, IntegrityError | sqlite3.IntegrityError)]
    found += [e for e in causes(error) if isinstance(e, pg.IntegrityConstraintViolationError)]
    if not found:
        return None
    for cause in causes(error):
        invalid_sqlite = isinstance(cause, sqlite3.IntegrityError) and str(cause).startswith(
            _INVALID_SQLITE
        )
        if isinstance(cause, _INVALID_PG) or invalid_sqlite:
            return ValidationFailed.single("body", REFUSED)
    return Conflict(CONFLICT)
