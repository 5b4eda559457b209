"""Building a NamedTuple on a hot path, through one typed helper per type.

A NamedTuple's own constructor is a Python function (keywords, defaults) around
`tuple.__new__`; on paths run for every request, or for every key each usage flush, it costs
more than the work around it. Each type built there has a helper next to it (`decision`,
`presented_key_of`, `minute_count`, `recent_requests`) whose signature names every field, so
that the type checker sees a wrong arity or order; `tests/unit/test_named_tuples.py` holds each
equal to the type's own constructor. `tuple_new` is for those helpers only.
"""

from __future__ import annotations

tuple_new = tuple.__new__
