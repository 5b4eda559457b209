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


def test_at_most_first_trims_rings_are_trimmed_for_the_first_time_by_one_write() -> None:
    rings = RingTrimming(ring_size=10, first_trims=2)
    first = Counter({"d": 1, "c": 1, "b": 2, "a": 12})
    assert rings.due(first) == ["a", "b"]  # the most requests first; c and d wait
    rings.written(first, ["a", "b"])

    second = Counter({"d": 1, "c": 1, "a": 10, "e": 1})
    assert rings.due(second) == ["a", "c", "d"]  # a again (10 since its trim), c and d first
    rings.written(second, ["a", "c", "d"])

    third = Counter({"e": 1, "c": 9, "b": 10})
    assert rings.due(third) == ["b", "e"]  # b: 10 since its trim; c: 9; e waited a write
    rings.written(third, ["b", "e"])
    assert rings.due(Counter({"c": 1, "d": 9, "e": 9})) == ["c"]
