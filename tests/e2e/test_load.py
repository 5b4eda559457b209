"""The per-key limit holds across processes: two `keyport serve` processes sharing Redis, one
key, a client driving both at well over the limit. What passes must be within 5 % of what the
bucket allows.

The windows are as short as their figures allow. A token bucket has no clock of its own but
its rate, so a window four times shorter with a rate four times higher is the same experiment:
the same requests, the same allowance, the same share of burst and refill. What does not scale
is the edges (a request in flight as the window opens or closes, a lease's last tokens: a few
tokens in all), which is why the allowance stays in the hundreds, where 5 % is 15 tokens.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.api_calls import bearer
from tests.support.private_services import PrivateRedis
from tests.support.seed import create_keys
from tests.support.server import ServerProcess, keyport_env, run_cli, start_all
from tests.support.traffic import Traffic

# A minute at 100 a minute with bursts of 200, 10 requests a second, four times faster: 15 s
# at 400 a minute, 40 a second (600 requests, six times the limit; the bucket allows 300).
DURATION = 15.0  # seconds
STREAMS = 4  # per process, so that one slow answer does not hold up the rest
PER_PROCESS_RATE = 20.0  # requests a second
BURST, PER_MINUTE = 200, 400


@pytest.mark.slow
def test_the_limit_holds_within_5_percent_across_two_processes(
    redis: PrivateRedis, tmp_path: Path
) -> None:
    env = keyport_env(
        f"sqlite:///{tmp_path / 'load.db'}",
        KEYPORT_REDIS_URL=redis.url,
        KEYPORT_RATE_LIMIT=str(PER_MINUTE),
        KEYPORT_RATE_LIMIT_BURST=str(BURST),
    )
    run_cli(env, "init", "--company", "Acme", "--owner-email", "o@acme.test")
    key = create_keys(env, 1)[0]["key"]
    servers = start_all([ServerProcess(env, tmp_path / f"server-{n}.log") for n in range(2)])
    traffic = Traffic()
    try:
        for n, server in enumerate(servers):
            for stream in range(STREAMS):
                traffic.stream(
                    f"server-{n}-{stream}",
                    server.port,
                    "/v4/user/me",
                    bearer(key),
                    pause=STREAMS / PER_PROCESS_RATE,
                )
        time.sleep(DURATION)
        answers = traffic.stop()
    finally:
        traffic.stop()
        for server in servers:
            server.stop()

    assert {a.status for a in answers} == {200, 429}
    started = [a.started for a in answers]
    elapsed = max(started) - min(started)
    allowed = BURST + PER_MINUTE * elapsed / 60
    passed = sum(a.status == 200 for a in answers)
    by_process = {
        n: sum(a.status == 200 for a in answers if a.label.startswith(f"server-{n}-"))
        for n in range(2)
    }
    print(
        f"\nload: {len(answers)} requests in {elapsed:.1f}s, {passed} passed "
        f"({by_process}), the bucket allows {allowed:.1f}: "
        f"{100 * (passed - allowed) / allowed:+.2f}%"
    )
    assert abs(passed - allowed) <= 0.05 * allowed
    assert all(count > 0 for count in by_process.values())
    assert len(answers) >= 0.9 * 2 * PER_PROCESS_RATE * DURATION  # the client kept up


# 20 s at 300 a minute (bursts to 50) twice as fast: 10 s at 600 a minute, the same 1,000
# requests and the same allowance of 150 (50 at once, 100 refilled: the refill dominates).
HAMMER_SECONDS = 10.0
HAMMER_RATE, HAMMER_BURST = 600, 50
HAMMER_STREAMS = 3  # per process


@pytest.mark.slow
def test_four_processes_at_ten_times_the_limit_never_pass_more_than_the_bucket_allows(
    redis: PrivateRedis, tmp_path: Path
) -> None:
    """Leases (services/access/token_leases.py) take tokens from Redis before they are spent: four
    processes sending one key ten times its rate stay within the bucket's allowance."""
    env = keyport_env(
        f"sqlite:///{tmp_path / 'hammer.db'}",
        KEYPORT_REDIS_URL=redis.url,
        KEYPORT_RATE_LIMIT=str(HAMMER_RATE),
        KEYPORT_RATE_LIMIT_BURST=str(HAMMER_BURST),
    )
    run_cli(env, "init", "--company", "Acme", "--owner-email", "o@acme.test")
    key = create_keys(env, 1)[0]["key"]
    servers = start_all([ServerProcess(env, tmp_path / f"server-{n}.log") for n in range(4)])
    per_stream = 10 * HAMMER_RATE / 60 / (len(servers) * HAMMER_STREAMS)
    traffic = Traffic()
    try:
        for n, server in enumerate(servers):
            for stream in range(HAMMER_STREAMS):
                traffic.stream(
                    f"server-{n}-{stream}",
                    server.port,
                    "/v4/user/me",
                    {"Authorization": f"Bearer {key}"},
                    pause=1 / per_stream,
                )
        time.sleep(HAMMER_SECONDS)
        answers = traffic.stop()
    finally:
        traffic.stop()
        for server in servers:
            server.stop()

    assert {a.status for a in answers} == {200, 429}
    elapsed = max(a.ended for a in answers) - min(a.started for a in answers)
    allowed = HAMMER_BURST + HAMMER_RATE / 60 * elapsed
    passed = sum(a.status == 200 for a in answers)
    print(
        f"\nhammer: {len(answers)} requests in {elapsed:.1f}s from 4 processes, {passed} passed, "
        f"the bucket allows {allowed:.1f}: {100 * (passed - allowed) / allowed:+.2f}%"
    )
    assert passed <= 1.05 * allowed
    assert passed >= 0.9 * allowed  # leases are not lost either
    assert len(answers) >= 0.5 * 10 * HAMMER_RATE / 60 * HAMMER_SECONDS  # the clients kept up
    for answer in answers:
        remaining = int(answer.headers["ratelimit-remaining"])
        assert 0 <= remaining <= HAMMER_BURST
        if answer.status == 429:
            assert int(answer.headers["retry-after"]) >= 1
            assert answer.body == {
                "statusCode": 429,
                "message": "Too Many Requests",
                "error": "Too Many Requests",
            }
