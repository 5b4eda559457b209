"""Writing usage batches (services.observability.usage_recorder.UsageStore) with upserts SQLite and
PostgreSQL share.

One transaction per batch. Rows are written in key order, so two processes flushing at the
same time lock rows in the same order and cannot deadlock. The statements are plain functions
of a synchronous connection: PostgreSQL runs them on the async engine (`run_sync`), SQLite
in one worker thread with its own connection (see db.engine.create_sqlite_writer for why).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    or_,
    select,
)
from sqlalchemy import update as sql_update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import await_only

from keyport.db.engine import WRITE_OPTION, create_sqlite_writer, is_sqlite
from keyport.db.ring_trimming import RingTrimming
from keyport.db.tables import (
    api_keys,
    key_recent_batches,
    key_sightings,
    key_usage_minutes,
    personal_access_tokens,
)
from keyport.db.types import UtcDateTime
from keyport.domain.usage import LastUse, MinuteCount, RecentRequests, Sighting
from keyport.services.observability.usage_recorder import RING_SIZE, UsageBatch

T = TypeVar("T")

_minutes = key_usage_minutes.c
_batches = key_recent_batches.c
_sightings = key_sightings.c


class _Write(NamedTuple):
    batch: UsageBatch
    trim: list[str]  # the keys whose rings of recent requests this write trims


class SqlUsageStore:
    def __init__(self, engine: AsyncEngine, database_url: str) -> None:
        self._engine = engine
        self._sqlite: Engine | None = (
            create_sqlite_writer(database_url) if is_sqlite(database_url) else None
        )
        self._rings = RingTrimming(RING_SIZE)

    async def write(self, batch: UsageBatch) -> None:
        written: Counter[str] = Counter()
        for ring in batch.recent:
            written[ring.key_id] += ring.requests
        trim = self._rings.due(written)
        await self._in_transaction(_write_batch, _Write(batch, trim))
        self._rings.written(written, trim)

    async def prune(self, counts_before_minute: int, sightings_before: datetime) -> None:
        await self._in_transaction(_prune, (counts_before_minute, sightings_before))

    async def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.dispose()

    async def _in_transaction(self, work: Any, argument: Any) -> None:
        if self._sqlite is not None:
            await asyncio.to_thread(_run_in_transaction, self._sqlite, work, argument)
            return
        async with self._engine.connect() as connection:
            connection = await connection.execution_options(**{WRITE_OPTION: True})
            async with connection.begin():
                await connection.run_sync(work, argument)


def _run_in_transaction(engine: Engine, work: Any, argument: Any) -> None:
    with engine.connect() as connection:
        connection = connection.execution_options(**{WRITE_OPTION: True})
        with connection.begin():
            work(connection, argument)


def _write_batch(connection: Connection, write: _Write) -> None:
    if connection.dialect.name == "postgresql":
        _write_batch_postgres(connection, write)
        return
    batch = write.batch
    if batch.counts:
        _add_counts(connection, batch.counts)
    if batch.recent:
        connection.execute(
            insert(key_recent_batches),
            [{"key_id": k, "requests": n, "entries": e} for k, n, e in _ring_rows(batch.recent)],
        )
    for key_ids in _chunks(write.trim, _TRIM_CHUNK):
        connection.execute(_TRIM_RINGS, {"key_ids": key_ids, "ring_size": RING_SIZE})
    if batch.sightings:
        _add_sightings(connection, batch.sightings)
    if batch.last_uses:
        _move_last_use(connection, batch.last_uses)


def _prune(connection: Connection, before: tuple[int, datetime]) -> None:
    counts_before_minute, sightings_before = before
    connection.execute(delete(key_usage_minutes).where(_minutes.minute < counts_before_minute))
    connection.execute(delete(key_sightings).where(_sightings.last_seen_at < sightings_before))


def _upsert(connection: Connection, table: Table) -> Any:
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def _add_counts(connection: Connection, counts: Sequence[MinuteCount]) -> None:
    statement = _upsert(connection, key_usage_minutes)
    added = statement.excluded
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=[_minutes.key_id, _minutes.minute],
            set_={
                "success": _minutes.success + added.success,
                "client_error": _minutes.client_error + added.client_error,
                "server_error": _minutes.server_error + added.server_error,
            },
        ),
        [count._asdict() for count in counts],
    )


def _ring_rows(recent: Sequence[RecentRequests]) -> list[tuple[str, int, str]]:
    """Each key's requests of this flush as one row: its entries, one JSON array."""
    return [(r.key_id, r.requests, r.entries.decode()) for r in recent]


def _write_batch_postgres(connection: Connection, write: _Write) -> None:
    """PostgreSQL: the same rows through the transaction's own asyncpg connection, with no
    statement built or parameter processed per row (with many keys a flush holds rows for
    every key: the SQLAlchemy executemany cost about 20 µs of this process's CPU a row).
    Counts, sightings and last uses are upserts over arrays (unnest); they are unique per
    batch, as ON CONFLICT needs. Recent requests go by COPY. At most _PG_CHUNK rows a
    statement: the event loop serves requests while each one is on its way."""
    connection.exec_driver_sql("SELECT 1")  # SQLAlchemy's transaction has begun
    driver: Any = connection.connection.driver_connection
    batch = write.batch
    for counts in _chunks(batch.counts):
        await_only(
            driver.execute(
                _PG_COUNTS,
                [c.key_id for c in counts],
                [c.minute for c in counts],
                [c.success for c in counts],
                [c.client_error for c in counts],
                [c.server_error for c in counts],
            )
        )
    for recent in _chunks(batch.recent):
        await_only(
            driver.copy_records_to_table(
                key_recent_batches.name,
                records=_ring_rows(recent),
                columns=("key_id", "requests", "entries"),
            )
        )
    for key_ids in _chunks(write.trim):
        await_only(driver.execute(_PG_TRIM_RINGS, key_ids, RING_SIZE))
    for seen in _chunks(batch.sightings):
        await_only(
            driver.execute(
                _PG_SIGHTINGS,
                [s.key_id for s in seen],
                [s.kind for s in seen],
                [s.value for s in seen],
                [_naive_utc(s.first_seen) for s in seen],
                [_naive_utc(s.last_seen) for s in seen],
                [s.requests for s in seen],
            )
        )
    for uses in _chunks(batch.last_uses):
        for statement in (_PG_LAST_USES, _PG_TOKEN_LAST_USES):
            await_only(
                driver.execute(
                    statement,
                    [u.key_id for u in uses],
                    [_naive_utc(u.at) for u in uses],
                    [u.ip for u in uses],
                )
            )


# Building and encoding a flush of 10,000 keys' rows at once held the event loop ~200 ms.
_PG_CHUNK = 1000


def _chunks(rows: Sequence[T], size: int = _PG_CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _naive_utc(moment: datetime) -> datetime:
    """The timestamp columns hold UTC without a zone (db.types.UtcDateTime)."""
    if moment.tzinfo is not UTC:  # the recorder's moments are UTC already
        moment = moment.astimezone(UTC)
    return moment.replace(tzinfo=None)


_PG_COUNTS = """
INSERT INTO key_usage_minutes AS m (key_id, minute, success, client_error, server_error)
SELECT * FROM unnest($1::varchar[], $2::int[], $3::int[], $4::int[], $5::int[])
ON CONFLICT (key_id, minute) DO UPDATE SET
  success = m.success + EXCLUDED.success,
  client_error = m.client_error + EXCLUDED.client_error,
  server_error = m.server_error + EXCLUDED.server_error
"""
_PG_SIGHTINGS = """
INSERT INTO key_sightings AS s (key_id, kind, value, first_seen_at, last_seen_at, requests)
SELECT * FROM unnest(
  $1::varchar[], $2::varchar[], $3::varchar[], $4::timestamp[], $5::timestamp[], $6::bigint[]
)
ON CONFLICT (key_id, kind, value) DO UPDATE SET
  first_seen_at = LEAST(s.first_seen_at, EXCLUDED.first_seen_at),
  last_seen_at = GREATEST(s.last_seen_at, EXCLUDED.last_seen_at),
  requests = s.requests + EXCLUDED.requests
"""
# Forward only, as _move_last_use.
_PG_LAST_USES = """
UPDATE api_keys AS k SET last_used_at = u.at, last_used_ip = u.ip
FROM unnest($1::varchar[], $2::timestamp[], $3::varchar[]) AS u(key_id, at, ip)
WHERE k.id = u.key_id AND (k.last_used_at IS NULL OR k.last_used_at < u.at)
"""
# A personal access token's usage is recorded under its id like a key's: its last use too.
_PG_TOKEN_LAST_USES = _PG_LAST_USES.replace("api_keys", "personal_access_tokens")
# A ring's row goes once the key's newer rows hold RING_SIZE requests: per key named, a walk
# of its index entries newest first, summing requests (no ranking of every row of every key).
_PG_TRIM_RINGS = """
DELETE FROM key_recent_batches
WHERE id IN (
  SELECT old.id
  FROM unnest($1::varchar[]) AS k(key_id)
  CROSS JOIN LATERAL (
    SELECT w.id FROM (
      SELECT n.id,
        sum(n.requests) OVER (ORDER BY n.id DESC ROWS UNBOUNDED PRECEDING) - n.requests AS newer
      FROM key_recent_batches AS n
      WHERE n.key_id = k.key_id
    ) AS w
    WHERE w.newer >= $2
  ) AS old
)
"""


# SQLite: the same rule, one statement for many keys (a statement per key made a flush of many
# keys cost a round trip and a statement build per key).
_TRIM_CHUNK = 500  # keys per statement: well under SQLite's bound-parameter limit
_held_by_newer = (
    select(
        _batches.id,
        (
            func.sum(_batches.requests).over(
                partition_by=_batches.key_id, order_by=_batches.id.desc(), rows=(None, 0)
            )
            - _batches.requests
        ).label("newer"),
    )
    .where(_batches.key_id.in_(bindparam("key_ids", expanding=True)))
    .subquery()
)
_TRIM_RINGS = delete(key_recent_batches).where(
    _batches.id.in_(
        select(_held_by_newer.c.id).where(_held_by_newer.c.newer >= bindparam("ring_size"))
    )
)


def _add_sightings(connection: Connection, sightings: Sequence[Sighting]) -> None:
    statement = _upsert(connection, key_sightings)
    seen = statement.excluded
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=[_sightings.key_id, _sightings.kind, _sightings.value],
            set_={
                "first_seen_at": case(
                    (seen.first_seen_at < _sightings.first_seen_at, seen.first_seen_at),
                    else_=_sightings.first_seen_at,
                ),
                "last_seen_at": case(
                    (seen.last_seen_at > _sightings.last_seen_at, seen.last_seen_at),
                    else_=_sightings.last_seen_at,
                ),
                "requests": _sightings.requests + seen.requests,
            },
        ),
        [
            {
                "key_id": s.key_id,
                "kind": s.kind,
                "value": s.value,
                "first_seen_at": s.first_seen,
                "last_seen_at": s.last_seen,
                "requests": s.requests,
            }
            for s in sightings
        ],
    )


def _move_last_use(connection: Connection, uses: Sequence[LastUse]) -> None:
    """Forward only: a process with an older value never overwrites a newer one. A use names
    a key or a personal access token (ids are UUIDs: never both)."""
    at = bindparam("use_at", type_=UtcDateTime())
    values = [{"use_key_id": u.key_id, "use_at": u.at, "use_ip": u.ip} for u in uses]
    for table in (api_keys, personal_access_tokens):
        used = table.c
        connection.execute(
            sql_update(table)
            .where(
                and_(
                    used.id == bindparam("use_key_id"),
                    or_(used.last_used_at.is_(None), used.last_used_at < at),
                )
            )
            .values(last_used_at=at, last_used_ip=bindparam("use_ip")),
            values,
        )
