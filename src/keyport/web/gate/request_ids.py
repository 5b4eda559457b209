"""Request ids: 96 random bits each, drawn from the OS many at a time."""

from __future__ import annotations

import os

_ID_DIGITS = 24  # 96 random bits, in hex
_IDS_A_DRAW = 512
_id_pool = ""
_id_at = 0


def new_request_id() -> str:
    # An id, not a secret: 96 random bits. The OS is asked for many at once (a system call per
    # request was once the gate's most expensive line; a big random int formatted per request
    # the next), and a request takes a slice of them.
    global _id_pool, _id_at
    at = _id_at
    if at >= len(_id_pool):
        _id_pool, at = os.urandom(_ID_DIGITS // 2 * _IDS_A_DRAW).hex(), 0
    _id_at = at + _ID_DIGITS
    return _id_pool[at : at + _ID_DIGITS]


def _forget_ids() -> None:
    """A forked child draws its own: two processes must never hand out the same ids."""
    global _id_pool, _id_at
    _id_pool, _id_at = "", 0


os.register_at_fork(after_in_child=_forget_ids)
