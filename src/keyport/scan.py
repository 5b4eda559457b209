"""Finding leaked keys in files: the pattern, then the checksum, so few false positives."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from keyport.domain.keys import KEY_PATTERN, parse_key_id


def scan_text(text: str) -> Iterator[tuple[int, str]]:
    """(line number, key id) of each real key in `text`."""
    for number, line in enumerate(text.splitlines(), start=1):
        for match in KEY_PATTERN.finditer(line):
            key_id = parse_key_id(match.group(0))
            if key_id is not None:
                yield number, key_id


def scan_paths(paths: Iterable[Path]) -> Iterator[tuple[str, str]]:
    for root in paths:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for file in files:
            try:
                text = file.read_text(encoding="utf-8", errors="ignore")
            except OSError:
                continue
            for line, key_id in scan_text(text):
                yield f"{file}:{line}", key_id
