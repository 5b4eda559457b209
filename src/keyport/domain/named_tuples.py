"""Building a NamedTuple on a hot path.

A NamedTuple's own constructor is a Python function (keywords, defaults) around
`tuple.__new__`; on paths run for every request, or for every key each usage flush, it costs
more than the work around it. `new_named_tuple(Cls, (field, ...))` builds the same instance the
way `tuple` does: every field given, positionally, in order.
"""

from __future__ import annotations

new_named_tuple = tuple.__new__
