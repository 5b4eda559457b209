"""Finding leaked credentials in files — company keys and personal access tokens: the
pattern, then the checksum, so few false positives."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from keyport.domain import personal_tokens
from keyport.domain.keys import KEY_PATTERN, parse_key_id


class Finding(NamedTuple):
    line: int
    what: str  # "API key <id>" or "personal access token <hint>" (never the whole token)


def scan_text(text: str) -> Iterator[Finding]:
    """Each real key or token in `text`, by line."""
    for number, line in enumerate(text.splitlines(), start=1):
        for match in KEY_PATTERN.finditer(line):
            key_id = parse_key_id(match.group(0))
            if key_id is not None:
                yield Finding(number, f"API key {key_id}")
        for match in personal_tokens.TOKEN_PATTERN.finditer(line):
            token = match.group(0)
            if personal_tokens.is_token(token):
                yield Finding(number, f"personal access token {personal_tokens.hint(token)}")


def scan_paths(paths: Iterable[Path]) -> Iterator[tuple[str, str]]:
    """(file:line, what was found) for every key or token in the files under `paths`."""
    for root in paths:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for file in files:
            try:
                text = file.read_text(encoding="utf-8", errors="ignore")
            except OSError:
                continue
            for line, what in scan_text(text):
                yield f"{file}:{line}", what
