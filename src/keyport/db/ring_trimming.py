"""Which keys' rings of recent requests a usage flush trims to the rows that hold their
RING_SIZE newest requests.

Trimming one key's ring reads its rows through an index. With many keys a flush writes a row
to each of thousands of rings, and trimming every ring it wrote cost the database more than
the writes: with 10,000 full rings, half a second of PostgreSQL's CPU for every 500 keys,
every flush. So a process trims a key's ring

- at its first write to that ring (which also trims what earlier processes left), and
- whenever it has written RING_SIZE requests to it since it last trimmed it.

A ring then holds the rows of its RING_SIZE newest requests (the oldest of them may hold older
ones too) plus fewer than RING_SIZE requests from each process writing to it. Readers ask for
the newest requests they show, so the extra ones are never seen.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable


class RingTrimming:
    def __init__(self, ring_size: int) -> None:
        self._ring_size = ring_size
        self._written_since_trim: dict[str, int] = {}

    def due(self, written: Counter[str]) -> list[str]:
        """The keys whose rings the write of `written` (requests per key) must trim, sorted."""
        since, size = self._written_since_trim, self._ring_size
        return sorted(
            key_id for key_id, count in written.items() if since.get(key_id, size) + count >= size
        )

    def written(self, written: Counter[str], trimmed: Iterable[str]) -> None:
        """Call once the write of `written` that trimmed `trimmed` has been committed."""
        since = self._written_since_trim
        for key_id, count in written.items():
            since[key_id] = since.get(key_id, 0) + count
        for key_id in trimmed:
            since[key_id] = 0
