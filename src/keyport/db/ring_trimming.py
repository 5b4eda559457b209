"""Which keys' rings of recent requests a usage flush trims to the rows that hold their
RING_SIZE newest requests.

Trimming one key's ring reads its rows through an index. With many keys a flush writes a row
to each of thousands of rings, and trimming every ring it wrote cost the database more than
the writes: with 10,000 full rings, half a second of PostgreSQL's CPU for every 500 keys,
every flush. So a process trims a key's ring

- once early in its life (which also trims what earlier processes left): at its first write
  to that ring, but for at most FIRST_TRIMS_PER_WRITE keys a write — the others wait for the
  next writes, the keys with the most requests in a write first (their rings grow fastest).
  A process that starts with 10,000 keys in use would otherwise trim all of their rings in
  its first flush: about 5 s of PostgreSQL's CPU at once (measured), taken
  from the requests served meanwhile; and
- whenever it has written RING_SIZE requests to it since it last trimmed it.

A ring then holds the rows of its RING_SIZE newest requests (the oldest of them may hold older
ones too) plus fewer than RING_SIZE requests from each process writing to it, plus, for a key
still waiting for this process's first trim, what this process wrote to it meanwhile (at most
the number of keys waiting / FIRST_TRIMS_PER_WRITE flushes). Readers ask for the newest
requests they show, so the extra ones are never seen.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable

FIRST_TRIMS_PER_WRITE = 100  # keys trimmed for the first time by one write, at most


class RingTrimming:
    def __init__(self, ring_size: int, *, first_trims: int = FIRST_TRIMS_PER_WRITE) -> None:
        self._ring_size = ring_size
        self._first_trims = first_trims
        # Keys this process has trimmed → requests written to their rings since.
        self._written_since_trim: dict[str, int] = {}

    def due(self, written: Counter[str]) -> list[str]:
        """The keys whose rings the write of `written` (requests per key) must trim, sorted."""
        since, size = self._written_since_trim, self._ring_size
        again = [k for k, count in written.items() if k in since and since[k] + count >= size]
        never = [k for k in written if k not in since]
        if len(never) > self._first_trims:
            never = heapq.nlargest(self._first_trims, never, key=written.__getitem__)
        return sorted(again + never)

    def written(self, written: Counter[str], trimmed: Iterable[str]) -> None:
        """Call once the write of `written` that trimmed `trimmed` has been committed."""
        since = self._written_since_trim
        for key_id, count in written.items():
            if key_id in since:
                since[key_id] += count
        for key_id in trimmed:
            since[key_id] = 0
