"""Which rings a usage flush trims (db/ring_trimming.py)."""

from __future__ import annotations

from collections import Counter

from keyport.db.ring_trimming import RingTrimming


def test_a_ring_is_trimmed_at_the_first_write_and_after_every_ring_size_rows_since() -> None:
    rings = RingTrimming(ring_size=10)
    first = Counter({"b": 1, "a": 3})
    assert rings.due(first) == ["a", "b"]  # first writes of this process, sorted
    rings.written(first, ["a", "b"])

    second = Counter({"a": 9, "b": 4})
    assert rings.due(second) == []
    rings.written(second, [])

    third = Counter({"a": 1, "b": 5})
    assert rings.due(third) == ["a"]  # 9 + 1 rows since its trim; b has 4 + 5
    rings.written(third, ["a"])

    assert rings.due(Counter({"a": 9, "b": 1})) == ["b"]


def test_a_write_that_did_not_commit_changes_nothing() -> None:
    rings = RingTrimming(ring_size=10)
    rings.written(Counter({"a": 2}), ["a"])
    rings.written(Counter({"a": 5}), [])
    assert rings.due(Counter({"a": 4})) == []  # 5 + 4; that write fails: `written` not called
    assert rings.due(Counter({"a": 5})) == ["a"]  # 5 + 5
