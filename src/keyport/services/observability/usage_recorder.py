"""Recording API key usage in memory, to be written in batches by the UsageFlusher.

`observe` runs on the request path for every request, so it only keeps the record; every
ABSORB_EVERY records (and at each drain) they are tallied together, in memory: per key and
minute a count by status class, a bounded ring of the key's newest requests, the client
addresses and user agents seen, and the key's last use. `drain` hands all of it over as one
UsageBatch; a batch that could not be written is given back with `restore` and retried.

`last_used_at` is written at most once a minute per key (the newest value is kept in memory
and written when a minute has passed since the previous write, and at shutdown). So is a
client already written for a key: a client new to this process goes out with the next flush
(the dashboard flags a never-seen address), while one it wrote in the last minute waits, its
last sighting and request count adding up in memory, until a minute has passed (or shutdown).
With many keys each used from the same client all day, that is one upsert per key and client
a minute instead of one every flush, the largest share of the database's work after the ring.

A key's (or client's) first write is counted as made up to half a minute earlier than it was,
at random, so its second write comes 30-60 s after its first: keys first seen together (a
restart with 10,000 in use) then come due in six flushes each minute, not all in one (10,000
`last_used_at` updates in one flush took PostgreSQL about half a second, measured with
bench/many_keys.py). Never more often than once in 30 s, and still at least once a minute.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import msgspec

from keyport.domain.auth_outcomes import KEY_STATE_REFUSALS
from keyport.domain.usage import (
    AGENT,
    IP,
    MAX_AGENT_LENGTH,
    MAX_PATH_LENGTH,
    LastUse,
    MinuteCount,
    RecentEntry,
    RecentRequests,
    Sighting,
    minute_count,
    recent_requests,
    status_class,
    without_keys,
)
from keyport.services.observability.request_record import RequestRecord

RING_SIZE = 100  # newest requests kept per key, in memory and in the database
LAST_USED_EVERY = 60.0  # seconds between two last_used_at writes of one key
SIGHTING_EVERY = 60.0  # seconds between two writes of one key's client (after its first)
ABSORB_EVERY = 256  # requests observed, then tallied together
DRAIN_STEP = 500  # keys turned into rows between two pauses of a drain
MAX_PENDING_SIGHTINGS = 20_000  # distinct new (key, client) pairs held between flushes
MAX_HELD_SIGHTINGS = 20_000  # (key, client) pairs held back (SIGHTING_EVERY); beyond, written
COUNT_RETENTION = timedelta(days=15)  # the dashboard charts 14 days
SIGHTING_RETENTION = timedelta(days=90)  # an address unseen this long is new again


@dataclass
class UsageBatch:
    counts: list[MinuteCount] = field(default_factory=list)
    recent: list[RecentRequests] = field(default_factory=list)  # one per key
    sightings: list[Sighting] = field(default_factory=list)
    last_uses: list[LastUse] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.counts or self.recent or self.sightings or self.last_uses)

    @property
    def requests(self) -> int:
        return sum(c.success + c.client_error + c.server_error for c in self.counts)


class UsageStore(Protocol):
    async def write(self, batch: UsageBatch) -> None:
        """Everything in the batch, in one transaction: all of it is written or none."""
        ...

    async def prune(self, counts_before_minute: int, sightings_before: datetime) -> None:
        """Drop minute counts and sightings older than these."""
        ...

    async def close(self) -> None: ...


Client = tuple[str | None, str | None]  # (address, user agent) as the request gave them


class _Pending:
    """What one key did since the last drain, in as few objects as will do: with thousands of
    keys in use a key's tallies are out of the CPU's caches at each of its requests, and every
    object touched is another miss. A key's requests mostly fall in one minute and come from
    one client, so those have fields of their own; other minutes and clients get dicts when
    they come."""

    __slots__ = (
        "client",
        "counts",
        "encoded",
        "entries",
        "last_use",
        "minute",
        "more_clients",
        "records",
        "seen",
        "tally",
    )

    def __init__(self) -> None:
        self.minute = -1
        self.tally = [0, 0, 0]  # this minute's [success, client error, server error]
        self.counts: dict[int, list[int]] | None = None  # other minutes' tallies
        # The ring: the first RING_SIZE requests since the drain as they are stored, then the
        # later ones as records, cut back to the newest RING_SIZE now and then (see
        # UsageRecorder._absorb; `ring` puts them together at the drain).
        self.encoded: bytearray | None = None  # "[" and each entry followed by ","
        self.entries = 0  # in `encoded`
        self.records: list[RequestRecord] | None = None
        self.client: Client | None = None  # the first client, seen [first, last, requests]
        self.seen: list[float] = [0.0, 0.0, 0]
        self.more_clients: dict[Client, list[float]] | None = None
        self.last_use: tuple[float, str | None] | None = None  # (at, client address)

    def other_minute(self, minute: int) -> None:
        """Make `minute` the one `tally` counts (a key's first request since the drain, a
        minute turning, a late request)."""
        if self.minute < 0:  # the first: nothing counted yet, no other minute to keep
            self.minute = minute
            return
        counts = self.counts
        if counts is None:
            counts = self.counts = {}
        counts[self.minute] = self.tally
        self.tally = counts.pop(minute, [0, 0, 0])
        self.minute = minute

    def all_counts(self) -> list[tuple[int, list[int]]]:
        """(minute, tally) by minute."""
        if not self.counts:  # most keys: one minute since the last drain
            return [(self.minute, self.tally)] if self.minute >= 0 else []
        counts = dict(self.counts)
        if self.minute >= 0:
            counts[self.minute] = self.tally
        return sorted(counts.items())

    def ring(self, entries: _Entries) -> tuple[int, bytes] | None:
        """The newest RING_SIZE requests since the drain, oldest first, as stored: (how many,
        one JSON array of entries); None for none. Once, at the drain that took this key's
        tallies: the buffer is closed in place."""
        records = self.records or ()
        if len(records) >= RING_SIZE:
            return RING_SIZE, _encode([entries.entry(r) for r in records[-RING_SIZE:]])
        encoded = self.encoded
        if encoded is None:
            return None
        encoded[-1] = _CLOSING_BRACKET  # in place of the last entry's comma
        if not records:
            return self.entries, bytes(encoded)
        # RING_SIZE entries, then fewer records than that: the newest of the entries, then all
        # the records (a key with between RING_SIZE and twice that many requests a flush).
        older: list[Any] = _decode(encoded)[len(records) :]
        newer = [entries.entry(r) for r in records]
        return RING_SIZE, _encode([*older, *newer])

    def seen_of(self, client: Client) -> list[float] | None:
        if client == self.client:
            return self.seen
        return self.more_clients.get(client) if self.more_clients else None

    def add_client(self, client: Client, seen: list[float]) -> None:
        """A client this key has not met since the last drain."""
        if self.client is None:
            self.client, self.seen = client, seen
        else:
            if self.more_clients is None:
                self.more_clients = {}
            self.more_clients[client] = seen

    def all_clients(self) -> Iterator[tuple[Client, list[float]]]:
        if self.client is not None:
            yield self.client, self.seen
        if self.more_clients:
            yield from self.more_clients.items()


class UsageRecorder:
    def __init__(
        self,
        now: Callable[[], float],
        *,
        max_held_sightings: int = MAX_HELD_SIGHTINGS,
        phase: Callable[[], float] = random.random,
    ) -> None:
        self._now = now
        self._max_held = max_held_sightings
        self._phase = phase  # in [0, 1): how much of half a minute a first write is moved back
        self._pending: dict[str, _Pending] = {}
        self._clients = 0  # (key, client) pairs pending, bounded by MAX_PENDING_SIGHTINGS
        self._last_used: dict[str, tuple[float, str | None]] = {}
        self._last_used_written: dict[str, float] = {}
        self._client_written: dict[tuple[str, Client], float] = {}  # -> when last handed over
        self._kept: list[RequestRecord] = []  # observed, not yet absorbed
        self._oldest: float | None = None  # started_at of the oldest absorbed, unwritten request
        self.dropped_sightings = 0

    def observe(self, record: RequestRecord) -> None:
        # Kept as it came, added to the keys' tallies ABSORB_EVERY at a time (`_absorb`).
        if record.key_id is None:
            return
        kept = self._kept
        kept.append(record)
        if len(kept) >= ABSORB_EVERY:
            self._absorb()

    @property
    def oldest_pending(self) -> float | None:
        """started_at of the oldest request not yet handed over by a drain."""
        if self._oldest is not None:
            return self._oldest
        return self._kept[0].started_at if self._kept else None

    def _absorb(self) -> None:
        """The kept records added to their keys' tallies, in one loop. Each key's tallies are
        cold in the CPU's caches with thousands of keys in use; a request's tallying among its
        other work cost about three times what the same tallying costs in a loop (the request
        log's encoding showed the same)."""
        kept, self._kept = self._kept, []
        if kept and self._oldest is None:
            self._oldest = kept[0].started_at
        all_pending, saw, entry = self._pending, self._saw, _Entries().entry
        encode_into = _encoder.encode_into
        for record in kept:
            # One unpacking: a NamedTuple's fields read by name cost more, for every request.
            (_, _, _, _, status, _, client_ip, user_agent, key_id, _, refusal, at, _) = record
            if key_id is None:  # never kept (observe): for the type checker
                continue
            pending = all_pending.get(key_id)
            if pending is None:
                pending = all_pending[key_id] = _Pending()
            minute = int(at // 60)
            if minute != pending.minute:
                pending.other_minute(minute)
            pending.tally[status_class(status)] += 1
            # A key with room left in its ring (most keys, with many in use) keeps this request
            # as it will be stored (the raw path and agent let go), in one growing buffer of
            # the key's: no objects kept per request. Thousands of small objects kept for a
            # flush interval (an entry's tuple, its numbers) slowed the whole express lane, not
            # only the recording, as if every request's short-lived objects then came from
            # memory scattered among them (measured with 10,000 keys in use). A busy key's full ring
            # keeps the records: most are pushed out by newer ones before an entry is made.
            count = pending.entries
            if count < RING_SIZE:
                encoded = pending.encoded
                if encoded is None:
                    encoded = pending.encoded = bytearray(b"[")
                encode_into(entry(record), encoded, -1)
                encoded.append(_COMMA)
                pending.entries = count + 1
            else:
                records = pending.records
                if records is None:
                    records = pending.records = []
                records.append(record)
                if len(records) >= 2 * RING_SIZE:
                    del records[:-RING_SIZE]
            client = (client_ip, user_agent)
            if client == pending.client:
                seen = pending.seen
                seen[1] = at
                seen[2] += 1
            else:
                saw(pending, client, at)
            if refusal not in KEY_STATE_REFUSALS:
                pending.last_use = (at, client_ip)

    def _saw(self, pending: _Pending, client: Client, at: float) -> None:
        # Cleaning and splitting into addresses and agents waits for the drain.
        seen = pending.seen_of(client)
        if seen is not None:
            seen[1] = at
            seen[2] += 1
        elif self._clients < MAX_PENDING_SIGHTINGS:
            pending.add_client(client, [at, at, 1])
            self._clients += 1
        else:
            self.dropped_sightings += 1

    def drain(self, *, final: bool = False) -> UsageBatch:
        """Everything counted since the last drain; last uses only where a minute has passed
        since this key's previous write (all of them when `final`)."""
        batch = UsageBatch()
        for _ in self.drain_in_steps(batch, final=final):
            pass
        return batch

    def drain_in_steps(self, batch: UsageBatch, *, final: bool = False) -> Iterator[None]:
        """`drain` into `batch`, pausing (yielding) after every DRAIN_STEP keys: with many keys
        turning a flush into rows takes long enough to hold up the requests waiting meanwhile.
        Everything is taken at the first step; what is recorded meanwhile is the next drain's.
        """
        self._absorb()
        pending, self._pending = self._pending, {}
        self._clients = 0
        self._oldest = None
        last_used = self._last_used
        for key_id, of_key in pending.items():
            if of_key.last_use is not None:
                last_used[key_id] = of_key.last_use
        batch.last_uses += self._due_last_uses(final)
        now = self._now()
        written = self._client_written = {
            pair: at for pair, at in self._client_written.items() if now - at < SIGHTING_EVERY
        }
        held = 0
        key_ids = sorted(pending)
        entries = _Entries()
        for start in range(0, len(key_ids), DRAIN_STEP):
            if start:
                yield
            for key_id in key_ids[start : start + DRAIN_STEP]:
                of_key = pending[key_id]
                batch.counts += [minute_count(key_id, m, *c) for m, c in of_key.all_counts()]
                ring = of_key.ring(entries)
                if ring is not None:
                    batch.recent.append(recent_requests(key_id, *ring))
                due: dict[Client, list[float]] = {}
                for client, seen in of_key.all_clients():
                    pair = (key_id, client)
                    if final or pair not in written or held >= self._max_held:
                        due[client] = seen
                        written[pair] = now if pair in written else self._first(now, SIGHTING_EVERY)
                    else:
                        self._hold(key_id, client, seen)
                        held += 1
                if due:
                    batch.sightings += _sightings(key_id, due)

    def _hold(self, key_id: str, client: Client, seen: list[float]) -> None:
        """Keep a client written less than SIGHTING_EVERY ago for a later drain, merged with
        what arrived for it since this drain began. Outside the bound on new pairs (at most
        max_held_sightings are held), and not in `oldest_pending`: its requests are counted
        and written, only its last sighting waits."""
        pending = self._pending.get(key_id)
        if pending is None:
            pending = self._pending[key_id] = _Pending()
        since = pending.seen_of(client)
        if since is None:
            pending.add_client(client, seen)
        else:
            since[0], since[1] = min(since[0], seen[0]), max(since[1], seen[1])
            since[2] += seen[2]

    def _due_last_uses(self, final: bool) -> list[LastUse]:
        now = self._now()
        due = [
            key_id
            for key_id in self._last_used
            if final or now - self._last_used_written.get(key_id, 0.0) >= LAST_USED_EVERY
        ]
        uses = []
        written = self._last_used_written
        for key_id in sorted(due):
            at, ip = self._last_used.pop(key_id)
            written[key_id] = now if key_id in written else self._first(now, LAST_USED_EVERY)
            uses.append(LastUse(key_id, _utc(at), ip))
        return uses

    def _first(self, now: float, every: float) -> float:
        """When a first write at `now` counts as made (see the module docstring)."""
        return now - self._phase() * every / 2

    def restore(self, batch: UsageBatch) -> None:
        """Take back a batch that could not be written, so the next flush retries it."""
        for count in batch.counts:
            pending = self._pending.setdefault(count.key_id, _Pending())
            if count.minute != pending.minute:
                pending.other_minute(count.minute)
            counts = pending.tally
            counts[0] += count.success
            counts[1] += count.client_error
            counts[2] += count.server_error
            self._oldest = min(self._oldest or float("inf"), count.minute * 60.0)
        for sighting in batch.sightings:
            self._restore_sighting(sighting)
        if batch.sightings:  # not written after all: their next requests are no repeat
            unwritten = {s.key_id for s in batch.sightings}
            self._client_written = {
                pair: at for pair, at in self._client_written.items() if pair[0] not in unwritten
            }
        for use in batch.last_uses:
            self._last_used_written.pop(use.key_id, None)
            newer = self._last_used.get(use.key_id)
            if newer is None or newer[0] < use.at.timestamp():
                self._last_used[use.key_id] = (use.at.timestamp(), use.ip)
        # The ring of recent requests is a view, not a count: what did not fit is let go.

    def _restore_sighting(self, sighting: Sighting) -> None:
        pending = self._pending.setdefault(sighting.key_id, _Pending())
        client = (sighting.value, None) if sighting.kind == IP else (None, sighting.value)
        first, last = sighting.first_seen.timestamp(), sighting.last_seen.timestamp()
        seen = pending.seen_of(client)
        if seen is None:
            pending.add_client(client, [first, last, sighting.requests])
            self._clients += 1
        else:
            seen[0], seen[1] = min(seen[0], first), max(seen[1], last)
            seen[2] += sighting.requests


def _sightings(key_id: str, clients: dict[Client, list[float]]) -> list[Sighting]:
    """Per client pair → per address and per user agent, cleaned and merged."""
    merged: dict[tuple[str, str], list[float]] = {}
    for (ip, agent), seen in clients.items():
        if ip:
            _merge(merged, (IP, ip[:64]), seen)
        if agent:
            _merge(merged, (AGENT, without_keys(agent, MAX_AGENT_LENGTH)), seen)
    moments: dict[float, datetime] = {}  # a pair's address and agent share their times
    return [
        Sighting(key_id, kind, value, _utc(first, moments), _utc(last, moments), int(requests))
        for (kind, value), (first, last, requests) in sorted(merged.items())
    ]


def _merge(
    merged: dict[tuple[str, str], list[float]], what: tuple[str, str], seen: list[float]
) -> None:
    first, last, requests = seen
    known = merged.get(what)
    if known is None:
        merged[what] = [first, last, requests]
    else:
        known[0], known[1], known[2] = (
            min(known[0], first),
            max(known[1], last),
            known[2] + requests,
        )


def _utc(posix_seconds: float, known: dict[float, datetime] | None = None) -> datetime:
    if known is None:
        return datetime.fromtimestamp(posix_seconds, UTC)
    moment = known.get(posix_seconds)
    if moment is None:
        moment = known[posix_seconds] = datetime.fromtimestamp(posix_seconds, UTC)
    return moment


_encoder = msgspec.json.Encoder()
_encode = _encoder.encode
_decode = msgspec.json.decode
_COMMA, _CLOSING_BRACKET = ord(","), ord("]")


class _Entries:
    """Records made ring entries, for one absorb or one drain: with many keys every request
    becomes an entry (a busy key's full ring keeps records, most pushed out before an entry is
    made of them). Each distinct path and user agent of the batch is cleaned once; the raw
    ones are forgotten with the batch (a client may paste a key into either)."""

    __slots__ = ("_agents", "_paths")

    def __init__(self) -> None:
        self._paths: dict[str, str] = {}
        self._agents: dict[str, str] = {}

    def entry(self, record: RequestRecord) -> RecentEntry:
        """A tuple in RecentEntry's order (one unpacking: a NamedTuple's fields read by name
        cost more, on every request)."""
        (request_id, method, path, route, status, latency, client_ip, user_agent, _, user_id,
         refusal, started_at, _) = record  # fmt: skip
        clean_path = self._paths.get(path)
        if clean_path is None:
            clean_path = self._paths[path] = without_keys(path, MAX_PATH_LENGTH)
        clean_agent = None
        if user_agent:
            clean_agent = self._agents.get(user_agent)
            if clean_agent is None:
                clean_agent = self._agents[user_agent] = without_keys(user_agent, MAX_AGENT_LENGTH)
        return (
            round(started_at * 1_000_000),
            request_id,
            method[:16],
            clean_path,
            route[:MAX_PATH_LENGTH] if route else None,
            status,
            int(latency * 1_000_000) / 1000,  # latency_ms, as the request log has it
            client_ip[:64] if client_ip else None,
            clean_agent,
            user_id,
            refusal,
        )
