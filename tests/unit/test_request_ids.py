"""Request ids: 96 random bits in hex, never the same twice, also across forked workers."""

from __future__ import annotations

import os
import re

from keyport.web.gate import new_request_id


def test_ids_are_24_hex_digits_and_never_repeat_across_many_draws() -> None:
    ids = [new_request_id() for _ in range(5_000)]  # several draws from the OS
    assert all(re.fullmatch("[0-9a-f]{24}", each) for each in ids)
    assert len(set(ids)) == len(ids)


def test_a_forked_child_draws_its_own_ids() -> None:
    new_request_id()  # the parent holds unused ids from its last draw
    reading, writing = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child process
        os.write(writing, "".join(new_request_id() for _ in range(100)).encode())
        os._exit(0)
    os.close(writing)
    os.waitpid(child, 0)
    with os.fdopen(reading, "rb") as pipe:
        from_child = pipe.read().decode()
    child_ids = {from_child[at : at + 24] for at in range(0, len(from_child), 24)}
    parent_ids = {new_request_id() for _ in range(100)}
    assert len(child_ids) == 100 and not child_ids & parent_ids
