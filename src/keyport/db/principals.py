"""The one query that turns a key digest into the Principal the request path caches.

Written once, in plain SQL, so the hot readers (sqlite3, asyncpg) and the SQLAlchemy
repository run the same statement; each backend only spells the parameter its own way.
"""

from __future__ import annotations

import functools
import json
from datetime import datetime
from typing import Any

from keyport.domain.ip_allowlists import parse_networks
from keyport.domain.keys import KeyStatus
from keyport.domain.principal import Principal

_PRINCIPAL = (
    "SELECT k.id, k.company_id, k.status, k.expires_at, k.rate_limit, "
    "(SELECT u.id FROM users u WHERE u.company_id = k.company_id AND u.role = 'owner' "
    "AND u.deleted_at IS NULL), k.scopes, k.allowed_ips, k.digest FROM api_keys k WHERE "
)
SQLITE = _PRINCIPAL + "k.digest = ?"
POSTGRES = _PRINCIPAL + "k.digest = $1"
SQLALCHEMY = _PRINCIPAL + "k.digest = :digest"
# Many digests in one read (a batch of cache misses); the digest is the last column.
POSTGRES_MANY = _PRINCIPAL + "k.digest = ANY($1::text[])"
MAX_MANY = 500  # digests in one read: well under SQLite's bound-parameter limit


def sqlite_many(count: int) -> str:
    return _PRINCIPAL + f"k.digest IN ({', '.join('?' * count)})"


# With many keys the cached principals are read again by the thousand a second (refresh-ahead),
# so the conversion below avoids the costly general paths: the enum's constructor, aware
# datetimes, decoding the same few JSON lists and parsing the same networks again.
_STATUSES = {status.value: status for status in KeyStatus}
_EPOCH = datetime(1970, 1, 1)


def _timestamp(value: datetime | str) -> float:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:  # both backends store UTC
        return (moment - _EPOCH).total_seconds()
    return moment.timestamp()


@functools.lru_cache(maxsize=1024)
def _decoded_list(text: str | bytes) -> tuple[str, ...]:
    return tuple(json.loads(text) or ())


def _json_list(value: Any) -> tuple[str, ...]:
    """The drivers hand JSON back as text (sqlite3, asyncpg) or already decoded."""
    if isinstance(value, str | bytes):
        return _decoded_list(value)
    return tuple(value or ())


_networks = functools.lru_cache(maxsize=1024)(parse_networks)  # networks are immutable


def to_principal(row: Any) -> Principal | None:
    """From the columns of the query above; None when the company has no owner any more."""
    if row[5] is None:
        return None
    return Principal(
        row[0],  # key_id
        row[1],  # company_id
        row[5],  # owner_id
        _STATUSES[row[2]],
        _timestamp(row[3]),  # expires_at
        row[4],  # rate_limit
        _json_list(row[6]),  # scopes
        _networks(_json_list(row[7])),  # allowed_networks
    )
