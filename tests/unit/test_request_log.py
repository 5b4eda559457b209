"""One JSON line per request, written in the background, never with a credential."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import time
from pathlib import Path

from keyport.domain.auth_outcomes import AuthOutcome
from keyport.services.observability.request_log import (
    ENCODE_STEP,
    PIPE_BUF,
    STATIC_ASSET_PATHS,
    WRITE_AT_MOST,
    RequestLog,
    StdoutSink,
    cut,
    encoded_lines,
    log_line,
)
from keyport.services.observability.request_record import RequestRecord


def record(path: str = "/v4/user/me", request_id: str = "a1") -> RequestRecord:
    return RequestRecord(
        request_id=request_id,
        method="GET",
        path=path,
        route="/v4/user/me",
        status=200,
        latency=0.0012345,
        client_ip="192.0.2.1",
        user_agent="secret-agent",
        key_id="k1",
        acting_user_id="u1",
        auth_failure=None,
        started_at=1_800_000_000.25,
    )


def test_a_line_names_the_request_the_key_and_the_user_but_no_header() -> None:
    line = log_line(record())
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line) == {
        "time": "2027-01-15T08:00:00.250Z",
        "event": "request",
        "request_id": "a1",
        "method": "GET",
        "path": "/v4/user/me",
        "route": "/v4/user/me",
        "status": 200,
        "latency_ms": 1.234,
        "key_id": "k1",
        "acting_user_id": "u1",
        "auth_failure": None,
        "client_ip": "192.0.2.1",
    }


def test_a_key_in_a_path_is_redacted() -> None:
    line = json.loads(log_line(record("/v4/ak_live:abc:SECRET/x")))
    assert line["path"] == "/v4/ak_live:[redacted]"


def test_a_batch_of_lines_cleans_each_path_of_its_own() -> None:
    paths = ["/v4/user/me", "/v4/ak_live:abc:SECRET/x", "/v4/user/me", "/v4/user/u1", "/v4/x"]
    lines = encoded_lines([tuple(record(path, f"r{n}")) for n, path in enumerate(paths)])
    logged = [json.loads(line) for line in lines.splitlines()]
    assert [(line["request_id"], line["path"]) for line in logged] == [
        ("r0", "/v4/user/me"),
        ("r1", "/v4/ak_live:[redacted]"),
        ("r2", "/v4/user/me"),
        ("r3", "/v4/user/u1"),
        ("r4", "/v4/x"),
    ]
    assert b"SECRET" not in lines


def test_writes_end_after_the_last_whole_line_that_fits() -> None:
    buffer = bytes((b"x" * 999 + b"\n") * 9)
    assert cut(buffer, 0, 4096) == 4000 and cut(buffer, 4000, 4096) == 8000
    assert cut(buffer, 8000, 4096) == 9000
    long = bytes(b"y" * 5000 + b"\n" + b"z\n")
    assert cut(long, 0, 4096) == 5001  # a longer line goes alone, whole
    assert cut(bytes(b"no newline at all" * 500), 0, 4096) == 8500


def test_a_pipe_gets_chunks_of_whole_lines_no_larger_than_an_atomic_pipe_write() -> None:
    sink = Sink()
    log = RequestLog(sink)
    for n in range(40):
        log.observe(record(request_id=f"r{n:02}"))
    log.observe(record(request_id="long" * 2000))
    log.write_pending(wait=False)
    assert sink.request_ids() == [*(f"r{n:02}" for n in range(40)), "long" * 2000]
    assert all(chunk.endswith(b"\n") for chunk in sink.written)
    assert [len(chunk) > PIPE_BUF for chunk in sink.written].count(True) == 1  # the long line


def test_a_file_takes_the_whole_buffer_in_one_write(tmp_path: Path) -> None:
    with (tmp_path / "out.log").open("wb") as file:
        sink = StdoutSink(file.fileno())
    assert sink.write_limit == WRITE_AT_MOST
    reading, writing = os.pipe()
    try:
        assert StdoutSink(writing).write_limit == PIPE_BUF
    finally:
        os.close(reading)
        os.close(writing)


class Sink:
    """Takes writes while `open`; a closed one is a stdout whose reader stalls."""

    write_limit = PIPE_BUF  # as for a pipe

    def __init__(self) -> None:
        self.open = True
        self.written: list[bytes] = []

    def ready(self) -> bool:
        return self.open

    def write(self, chunk: bytes | memoryview) -> None:
        self.written.append(bytes(chunk))

    def request_ids(self) -> list[str]:
        return [json.loads(line)["request_id"] for line in b"".join(self.written).splitlines()]


async def test_lines_are_written_by_the_background_task_and_the_rest_at_stop() -> None:
    sink = Sink()
    log = RequestLog(sink, interval=0.01)
    await log.start()
    log.observe(record(request_id="first"))
    for _ in range(100):
        await asyncio.sleep(0.01)
        if sink.written:
            break
    log.observe(record(request_id="last"))
    await log.stop()
    assert sink.request_ids() == ["first", "last"]


def test_a_stalled_stdout_keeps_the_lines_for_later_instead_of_blocking() -> None:
    sink = Sink()
    log = RequestLog(sink)
    for n in range(40):  # about 11 kB: three chunks
        log.observe(record(request_id=f"r{n:02}"))
    sink.open = False
    log.write_pending(wait=False)
    assert sink.written == []
    sink.open = True
    log.write_pending(wait=False)
    assert sink.request_ids() == [f"r{n:02}" for n in range(40)]
    assert all(len(chunk) <= PIPE_BUF for chunk in sink.written)


def test_the_stdout_sink_writes_to_its_file_descriptor(tmp_path: Path) -> None:
    target = tmp_path / "out.log"
    with target.open("wb") as file:
        sink = StdoutSink(file.fileno())
        assert sink.ready()
        sink.write(log_line(record()))
    assert json.loads(target.read_bytes())["request_id"] == "a1"


def test_lines_that_share_their_fields_with_earlier_ones_still_say_their_own() -> None:
    """A line is joined from fields encoded for earlier lines: every line must still read as
    its own record encoded whole, whatever its fields hold."""
    base = record()
    variants = [
        base,
        base._replace(request_id="b2", started_at=1_800_000_001.999, latency=0.25),
        base._replace(request_id='not hex: "quoted"\n', latency=0.0),
        base._replace(path='/v4/"odd"\\path\x01', route=None, status=404),
        base._replace(path="/v4/100%25/%s%d%%", client_ip="%s"),
        base._replace(key_id=None, acting_user_id=None, client_ip=None),
        base._replace(auth_failure=AuthOutcome.INVALID, status=401, latency=12.3456789),
        base._replace(method="PATCH", client_ip="2001:db8::1", acting_user_id="é"),
    ]
    for _ in range(2):  # the second time, every fragment is a reused one
        for each in variants:
            seconds, millis = divmod(round(each.started_at * 1000), 1000)
            assert json.loads(log_line(each)) == {
                "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03}Z",
                "event": "request",
                "request_id": each.request_id,
                "method": each.method,
                "path": each.path,
                "route": each.route,
                "status": each.status,
                "latency_ms": int(each.latency * 1_000_000) / 1000,
                "key_id": each.key_id,
                "acting_user_id": each.acting_user_id,
                "auth_failure": each.auth_failure,
                "client_ip": each.client_ip,
            }


def test_what_the_log_keeps_until_it_writes_is_soon_no_work_for_the_collector() -> None:
    """RequestLog keeps each record's fields until it writes them: the collector must not walk
    thousands of them again and again (a plain tuple of strings and numbers is untracked the
    first time a collection looks at it; a NamedTuple would stay tracked)."""
    log = RequestLog(Sink())
    log.observe(record(request_id=f"id{time.time_ns()}"))
    gc.collect(0)
    assert not any(map(gc.is_tracked, log._records))
    log.write_pending(wait=True)


async def test_every_full_batch_is_written_at_once_and_the_rest_at_the_next_tick() -> None:
    sink = Sink()
    log = RequestLog(sink)
    count = 3 * ENCODE_STEP + 7
    for n in range(count):
        log.observe(record(request_id=f"r{n}"))
        if n == ENCODE_STEP - 2:
            assert sink.written == []  # a batch not yet full waits
    assert sink.request_ids() == [f"r{n}" for n in range(3 * ENCODE_STEP)]
    assert len(log._records) == 7  # nothing of a written batch is held any longer
    await log._tick()
    assert sink.request_ids() == [f"r{n}" for n in range(count)]


def test_static_files_get_no_line_unless_asked_for() -> None:
    """Issue 33, item 10: a page view's assets would bury the requests people look for."""
    paths = ["/v4/user/me", "/admin/static/admin.css", "/admin/api-keys", "/schema/assets/x.js"]
    quiet_sink, sink = Sink(), Sink()
    quiet = RequestLog(quiet_sink, leave_out=STATIC_ASSET_PATHS)
    everything = RequestLog(sink)
    for n, path in enumerate(paths):
        quiet.observe(record(path, request_id=f"r{n}"))
        everything.observe(record(path, request_id=f"r{n}"))
    quiet.write_pending(wait=False)
    everything.write_pending(wait=False)

    assert quiet_sink.request_ids() == ["r0", "r2"]
    assert sink.request_ids() == ["r0", "r1", "r2", "r3"]
