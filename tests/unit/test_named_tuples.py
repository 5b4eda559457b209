"""Each hot path's NamedTuple helper builds exactly what the type's own constructor builds."""

from __future__ import annotations

from typing import Any

from keyport.domain.rate_limits import Decision, decision
from keyport.domain.usage import MinuteCount, RecentRequests, minute_count, recent_requests
from keyport.services.access.authentication import PresentedKey, presented_key_of


def test_each_helper_builds_what_the_constructor_builds() -> None:
    cases: list[tuple[Any, Any]] = [
        (decision(True, 200, 12.5, 3.3), Decision(True, 200, 12.5, 3.3)),
        (presented_key_of("ab" * 32, "k-1"), PresentedKey("ab" * 32, "k-1")),
        (minute_count("k-1", 7, 1, 2, 3), MinuteCount("k-1", 7, 1, 2, 3)),
        (recent_requests("k-1", 2, b"[]"), RecentRequests("k-1", 2, b"[]")),
    ]
    for built, constructed in cases:
        assert type(built) is type(constructed)
        assert built == constructed
        assert built._asdict() == constructed._asdict()
