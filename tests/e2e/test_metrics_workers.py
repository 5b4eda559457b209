"""`keyport serve --workers 2`: one scrape of /metrics reports both workers' requests."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.integration.test_metrics import parse, sample
from tests.support.seed import create_keys, init_company
from tests.support.server import ServerProcess, keyport_env

ME = "/v4/user/me"
DEADLINE = 60.0  # seconds; the machine may be busy


def me_requests(snapshot: list[dict[str, object]]) -> float:
    """GET /v4/user/me answered 200, in one worker's published snapshot."""
    (requests,) = [f for f in snapshot if f["name"] == "keyport_http_requests_total"]
    samples = requests["samples"]
    assert isinstance(samples, list)
    return float(sum(value for labels, value in samples if labels == ["GET", ME, "200"]))


def call_me(base_url: str, key: str, count: int) -> None:
    """`count` requests on fresh connections from 8 threads, so that both workers get some."""

    def one(_: int) -> None:
        with httpx.Client(base_url=base_url, timeout=10) as client:
            answer = client.get(ME, headers={"Authorization": f"Bearer {key}"})
            assert answer.status_code == 200

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(count)))


def served(tmp_path: Path, **env: str) -> tuple[ServerProcess, str]:
    environment = keyport_env(
        f"sqlite:///{tmp_path / 'keyport.db'}", KEYPORT_REQUEST_LOG="false", **env
    )
    init_company(environment, "Acme", "owner@acme.test")
    key = create_keys(environment, 1, days=1, rate_limit=1000000)[0]["key"]
    server = ServerProcess(environment, tmp_path / "server.log", workers=2)
    return server.start(), key


def scraped_me_requests(base_url: str) -> float:
    answer = httpx.get(f"{base_url}/metrics", timeout=10)
    assert answer.status_code == 200
    return sample(
        parse(answer.text), "keyport_http_requests_total", method="GET", route=ME, status="200"
    )


def test_a_scrape_sums_the_requests_of_both_workers(tmp_path: Path) -> None:
    shared = tmp_path / "metrics"
    server, key = served(tmp_path, KEYPORT_METRICS_DIR=str(shared))
    try:
        sent = 0
        per_worker: list[float] = []
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            call_me(server.base_url, key, 40)
            sent += 40
            files = sorted(shared.glob("*.json"))
            per_worker = [me_requests(json.loads(f.read_text())) for f in files]
            if len(per_worker) == 2 and all(per_worker):
                break
            time.sleep(0.5)
        assert len(per_worker) == 2 and all(per_worker), per_worker  # both served requests
        totals: list[float] = []
        while time.monotonic() < deadline:  # the other worker publishes within a second
            totals = [scraped_me_requests(server.base_url) for _ in range(4)]
            if all(total == sent for total in totals):
                break
            time.sleep(0.2)
        assert totals and all(total == sent for total in totals), (totals, sent)
    finally:
        assert server.stop() == 0, server.output()


def test_serve_makes_and_removes_its_own_metrics_directory(tmp_path: Path) -> None:
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    server, key = served(tmp_path, TMPDIR=str(temporary))
    try:
        (made,) = temporary.glob("keyport-metrics-*")
        deadline = time.monotonic() + DEADLINE
        while len(list(made.glob("*.json"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)  # the second worker may still be starting
        assert len(list(made.glob("*.json"))) == 2  # one per worker
        call_me(server.base_url, key, 30)
        total = 0.0
        while time.monotonic() < deadline:
            total = scraped_me_requests(server.base_url)
            if total == 30:
                break
            time.sleep(0.2)
        assert total == 30
    finally:
        assert server.stop() == 0, server.output()
    assert not made.exists()
