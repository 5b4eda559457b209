"""The one query that turns a credential's digest into the Principal the request path caches.

Written once, in plain SQL, so the hot readers (sqlite3, asyncpg) and the SQLAlchemy
repository run the same statement; each backend only spells the parameter its own way. A
digest names a company key or a personal access token (SHA-256 of different strings, so never
both): the statement looks in both tables, one indexed probe each, so a token is found by the
same read, cache and batching as a key.
"""

from __future__ import annotations

import functools
import json
from datetime import datetime
from typing import Any

from keyport.domain.ip_allowlists import parse_networks
from keyport.domain.keys import KeyStatus
from keyport.domain.principal import Credential, Principal

_KEY = (
    "SELECT k.id, k.company_id, k.status, k.expires_at, k.rate_limit, "
    "(SELECT u.id FROM users u WHERE u.company_id = k.company_id AND u.role = 'owner' "
    "AND u.deleted_at IS NULL), k.scopes, k.allowed_ips, k.digest, 'api_key' "
    "FROM api_keys k WHERE k.digest {match}"
)
# A token acts as its user: that user gone (deleted, or moved out of the company) reads as no
# principal at all. Its company's policy decides `inactive` (tokens turned off) and networks.
_TOKEN = (
    "SELECT t.id, t.company_id, CASE WHEN t.revoked_at IS NOT NULL THEN 'revoked' "
    "WHEN c.tokens_allowed THEN 'active' ELSE 'inactive' END, t.expires_at, NULL, "
    "(SELECT u.id FROM users u WHERE u.id = t.user_id AND u.company_id = t.company_id "
    "AND u.deleted_at IS NULL), t.scopes, c.token_allowed_ips, t.digest, "
    "'personal_access_token' "
    "FROM personal_access_tokens t JOIN companies c ON c.id = t.company_id WHERE t.digest {match}"
)


def _both(match: str) -> str:
    return _KEY.format(match=match) + " UNION ALL " + _TOKEN.format(match=match)


SQLITE = _both("= ?1")
POSTGRES = _both("= $1")
SQLALCHEMY = _both("= :digest")
# Many digests in one read (a batch of cache misses); the digest is column 8.
POSTGRES_MANY = _both("= ANY($1::text[])")
MAX_MANY = 500  # digests in one read: well under SQLite's bound-parameter limit


def sqlite_many(count: int) -> str:
    return _both(f"IN ({', '.join(f'?{n}' for n in range(1, count + 1))})")


# With many keys the cached principals are read again by the thousand a second (refresh-ahead),
# so the conversion below avoids the costly general paths: the enum's constructor, aware
# datetimes, decoding the same few JSON lists and parsing the same networks again.
_STATUSES = {status.value: status for status in KeyStatus}
_CREDENTIALS = {credential.value: credential for credential in Credential}
_EPOCH = datetime(1970, 1, 1)
_NEVER = float("inf")


def _timestamp(value: datetime | str | None) -> float:
    if value is None:  # a token without expiry
        return _NEVER
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
    """From the columns of the query above; None when the company has no owner any more (a
    key) or the token's user is gone (a token)."""
    if row[5] is None:
        return None
    return Principal(
        row[0],  # key_id (or token id)
        row[1],  # company_id
        row[5],  # owner_id (or the token's user)
        _STATUSES[row[2]],
        _timestamp(row[3]),  # expires_at
        row[4],  # rate_limit
        _json_list(row[6]),  # scopes
        _networks(_json_list(row[7])),  # allowed_networks
        _CREDENTIALS[row[9]],
    )
