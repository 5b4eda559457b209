"""Summarise a py-spy raw profile (bench/profile_hotpath.sh): where the serving thread's
samples fall — in the server's send (socket writes) or in Keyport's own code — and Keyport's
most expensive lines. Threads that only wait (thread pools, aiosqlite) are left out."""

from __future__ import annotations

import collections
import sys


def main(path: str, top: int = 30) -> None:
    total = 0
    own: collections.Counter[str] = collections.Counter()
    kinds: collections.Counter[str] = collections.Counter()
    with open(path, encoding="utf-8") as file:
        lines = file.read().splitlines()
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        frames, n = stack.split(";"), int(count)
        if any("thread.py" in f or "aiosqlite/core.py" in f for f in frames):
            continue
        total += n
        ours = [i for i, f in enumerate(frames) if "keyport/" in f and "keyport/cli.py" not in f]
        if not ours or any("uvicorn" in f for f in frames[ours[-1] + 1 :]):
            kinds["server (parsing, its Python, event loop)"] += n
            continue
        if "CoalescingTransport.flush" in frames[ours[-1]]:
            kinds["socket writes (one per response)"] += n
            continue
        kinds["keyport"] += n
        own[frames[ours[-1]]] += n
    print(f"serving-thread samples: {total}")
    for kind, n in kinds.most_common():
        print(f"{100 * n / total:5.1f}% {kind}")
    for frame, n in own.most_common(top):
        print(f"  {100 * n / total:5.1f}% {frame}")


if __name__ == "__main__":
    main(sys.argv[1], *(int(a) for a in sys.argv[2:3]))
