"""Unusual activity of a key, judged against its own history (domain.anomalies)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from keyport.domain.anomalies import AlertKind, failure_burst, new_sightings, spike
from keyport.domain.usage import IP, Bucket, Sighting, hour_of, hour_start, hourly_series

NOW = datetime(2026, 11, 20, 12, 30, tzinfo=UTC)


def seen(value: str, first: datetime, requests: int = 1) -> Sighting:
    return Sighting("k", IP, value, first, first, requests)


def test_an_address_first_seen_today_is_news_when_the_key_was_used_from_another_before() -> None:
    earliest = NOW - timedelta(days=5)
    alerts = new_sightings([seen("192.0.2.66", NOW - timedelta(hours=2), 3)], earliest, NOW)
    assert [(a.kind, a.subject, a.at, a.detail) for a in alerts] == [
        (
            AlertKind.NEW_IP,
            "192.0.2.66",
            NOW - timedelta(hours=2),
            "An address this key had never been used from before; 3 requests since.",
        )
    ]


def test_the_first_client_of_a_key_and_old_ones_are_not_news() -> None:
    first = NOW - timedelta(hours=3)
    assert new_sightings([seen("198.51.100.1", first)], first, NOW) == []
    old = seen("198.51.100.2", NOW - timedelta(hours=25))
    assert new_sightings([old], NOW - timedelta(days=9), NOW) == []


def hours_with(counts: dict[int, int], *, days: int = 14) -> list[Bucket]:
    """14 days of hourly buckets ending now; `counts` maps hours-ago to successes."""
    last = hour_of(NOW)
    rows = [(last - ago, total, 0, 0) for ago, total in counts.items()]
    return hourly_series(rows, last - days * 24 + 1, last)


def test_an_hour_far_above_the_keys_usual_busiest_hour_is_a_spike() -> None:
    daily_job = {ago: 100 for ago in range(24 + 3, 14 * 24, 24)}  # 100 requests once a day
    assert spike(hours_with(daily_job), NOW - timedelta(days=30), NOW) is None
    alert = spike(hours_with({**daily_job, 2: 301}), NOW - timedelta(days=30), NOW)
    assert alert is not None
    assert (alert.kind, alert.subject, alert.at) == (
        AlertKind.SPIKE,
        "301 requests",
        hour_start(hour_of(NOW) - 2),
    )


def test_a_quiet_key_that_suddenly_gets_traffic_spikes_but_a_new_key_has_no_baseline() -> None:
    assert spike(hours_with({1: 25}), NOW - timedelta(days=10), NOW) is not None
    assert spike(hours_with({1: 19}), NOW - timedelta(days=10), NOW) is None  # too few to matter
    assert spike(hours_with({1: 500}), NOW - timedelta(hours=20), NOW) is None


def test_many_failures_that_are_most_of_an_hours_requests_are_a_burst() -> None:
    last = hour_of(NOW)
    rows = [(last - 1, 5, 12, 0), (last - 3, 90, 9, 1), (last - 30, 0, 50, 0)]
    hours = hourly_series(rows, last - 14 * 24 + 1, last)
    alert = failure_burst(hours, NOW)
    assert alert is not None
    assert (alert.subject, alert.at) == ("12 requests", hour_start(last - 1))
    assert (
        alert.detail == "12 of 17 requests in one hour failed (12 client errors, 0 server errors)."
    )
    assert failure_burst(hourly_series(rows[1:], last - 100, last), NOW) is None
