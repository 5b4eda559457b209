"""docs/gateway.md's 5-minute walk-through, run as written: its shell block is taken from the
page, its ports moved to free ones, its Keyport pointed at a fresh database, and every `curl`
line must give the status and message its comment promises (retried until a deadline: the
servers it starts in the background need a moment, a revocation up to a second)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from tests.support.seed import init_company
from tests.support.server import free_port, keyport_env

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "gateway.md"

# `expect STATUS TEXT curl ARGS...`: the curl line again until it answers STATUS with TEXT in it.
PRELUDE = r"""
expect() {
  local status=$1 text=$2 answer code
  shift 2
  for _ in $(seq 1 600); do  # up to a minute: the servers start in the background
    answer=$("$@" -s -w '\n%{http_code}' 2>/dev/null || true)
    code=${answer##*$'\n'}
    if [ "$code" = "$status" ] && [[ "$answer" == *"$text"* ]]; then
      echo "PASS $status $text"
      return 0
    fi
    sleep 0.1
  done
  echo "FAIL $status $text: got $answer"
  exit 1
}
"""


def walkthrough() -> str:
    text = PAGE.read_text()
    section = text[text.index("## A 5-minute walk-through") :]
    found = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert found is not None
    return found.group(1)


def runnable(block: str, ports: dict[int, int]) -> tuple[str, list[str]]:
    """The block with free ports, `./scripts/serve` on Keyport's port and each commented curl
    line run through `expect`; and the checks it makes, in order."""
    for documented, free in ports.items():
        block = block.replace(f"127.0.0.1:{documented}", f"127.0.0.1:{free}")
        block = block.replace(f"http.server {documented}", f"http.server {free}")
    block = block.replace("./scripts/serve &", f"./scripts/serve --port {ports[8000]} &")
    lines, checks = [], []
    for line in block.replace("\\\n", " ").splitlines():
        command = re.match(r"(curl .*?)\s+# (\d{3}) (.+)$", line)
        if command is None:
            lines.append(line)
            continue
        status, message = command.group(2), command.group(3)
        checks.append(f"PASS {status} {message}")
        quoted = message.replace("'", "'\\''")
        lines.append(f"expect {status} '{quoted}' {command.group(1)}")
    return PRELUDE + "set -e\n" + "\n".join(lines) + "\n", checks


def test_the_walkthrough_runs_as_written(tmp_path: Path) -> None:
    block = walkthrough()
    # What makes the demo safe: an empty temporary folder, on the loopback only.
    assert '--bind 127.0.0.1 --directory "$DEMO"' in block and "mktemp -d" in block
    env = keyport_env(f"sqlite:///{tmp_path / 'keyport.db'}", KEYPORT_AUTH_FAILURE_LIMIT="1000")
    init_company(env, "Acme", "owner@acme.test")
    ports = {8000: free_port(), 9000: free_port(), 8080: free_port()}
    script, checks = runnable(block, ports)
    assert len(checks) == 5
    env["TMPDIR"] = str(tmp_path)
    log = tmp_path / "walkthrough.log"
    # Into a file: the servers it leaves running in the background keep their output open.
    with log.open("wb") as out:  # the shell keeps its own descriptor
        shell = subprocess.Popen(
            ["bash", "-c", script],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        shell.wait(300)
        output = log.read_text(errors="replace")
        said = [line for line in output.splitlines() if line.startswith(("PASS", "FAIL"))]
        assert said == checks, output
        assert shell.returncode == 0, output
        # The demo service shows nothing of the repository folder.
        for name in ["keyport.db", "README.md", "pyproject.toml"]:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{ports[9000]}/{name}", timeout=5)
            except urllib.error.HTTPError as refused:
                assert refused.code == 404
            else:
                raise AssertionError(f"the demo service served {name}")
    finally:
        with contextlib.suppress(ProcessLookupError):  # what it left running in the background
            os.killpg(shell.pid, signal.SIGTERM)
        shell.wait(10)
