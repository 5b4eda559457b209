"""Two py-spy raw profiles of the serving process compared in µs a request, function by function.

Why: `bench/many_keys.py --profile DIR` records each scenario right after its measurement
(8 s at 500 Hz, while wrk drives the server); divided by the requests answered meanwhile, a
function's samples become its CPU a request, and two scenarios compare like for like (where
10,000 keys cost more than one key, bench/README.md session 14).

    .venv/bin/python bench/profile_diff.py DIR/many_keys_one.txt 40726 \\
        DIR/many_keys_many.txt 28075 [--inclusive] [--top 30]

The numbers after each file are the scenario's requests a second as many_keys.py printed
them. Self time is a function's own samples (C calls it makes included, as py-spy counts
them); --inclusive counts every sample with the function anywhere on the stack. Threads that
only wait (thread pools) are left out.
"""

from __future__ import annotations

import argparse
import collections
import re
from pathlib import Path

SECONDS = 8.0  # many_keys.profile: py-spy's -d
RATE = 500  # and its -r
_LINE_NUMBER = re.compile(r":\d+\)")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", type=Path)
    parser.add_argument("first_rps", type=float)
    parser.add_argument("second", type=Path)
    parser.add_argument("second_rps", type=float)
    parser.add_argument("--inclusive", action="store_true")
    parser.add_argument("--top", type=int, default=30)
    return parser.parse_args()


def per_request(path: Path, rps: float, *, inclusive: bool) -> tuple[dict[str, float], float]:
    """µs a request by function (file and name, not line), and in all."""
    counts: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        frames = [_LINE_NUMBER.sub(")", frame) for frame in stack.split(";")]
        if any("_worker (concurrent" in frame or "thread.py" in frame for frame in frames):
            continue
        samples = int(count)
        total += samples
        for frame in set(frames) if inclusive else frames[-1:]:
            counts[frame] += samples
    scale = 1e6 / RATE / (SECONDS * rps)
    return {frame: n * scale for frame, n in counts.items()}, total * scale


def main() -> None:
    args = parse_args()
    first, first_total = per_request(args.first, args.first_rps, inclusive=args.inclusive)
    second, second_total = per_request(args.second, args.second_rps, inclusive=args.inclusive)
    print(f"µs a request in all: {first_total:.1f} -> {second_total:.1f}")
    frames = sorted(set(first) | set(second), key=lambda f: second.get(f, 0.0) - first.get(f, 0.0))
    kind = "inclusive" if args.inclusive else "self"
    print(f"largest differences ({kind}): second - first   first   second   function")
    for frame in reversed(frames[-args.top :]):
        a, b = first.get(frame, 0.0), second.get(frame, 0.0)
        print(f"  {b - a:+7.2f}  {a:7.2f}  {b:7.2f}  {frame[:120]}")


if __name__ == "__main__":
    main()
