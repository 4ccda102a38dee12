"""A real server process on a free loopback port, for browser and end-to-end tests."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(database_url: str, **env: str) -> Iterator[str]:
    port = free_port()
    full_env = {**os.environ, "ZHIXING_DATABASE_URL": database_url, "ZHIXING_ENV": "test",
                "ZHIXING_LOG_JSON": "true", **env}
    # The server's log goes to a file: an unread pipe fills up after a few thousand requests
    # and then blocks the server on its next log line.
    with tempfile.TemporaryFile(prefix="zhixing-server-", suffix=".log") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "zhixing.cli", "serve", "--no-migrate", "--port", str(port)],
            cwd=ROOT, env=full_env, stdout=subprocess.DEVNULL, stderr=log)
        try:
            yield _wait_ready(f"http://127.0.0.1:{port}", proc, log)
        except BaseException:
            _print_problems(log)  # pytest shows it with the failure: what the server saw
            raise
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


STARTUP_SECONDS = 90  # two test sessions and their browsers share two cores in CI


def _wait_ready(base: str, proc: subprocess.Popen[bytes], log: IO[bytes]) -> str:
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=1) as resp:  # noqa: S310
                if resp.status == 200:
                    return base
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            log.seek(0)
            output = log.read().decode(errors="replace")
            raise RuntimeError(f"server did not start: {output[-2000:]}")
        time.sleep(0.1)


def _print_problems(log: IO[bytes], keep: int = 40) -> None:
    """The server's warnings and errors (JSON log lines at WARNING and above), newest last."""
    log.seek(0)
    lines = log.read().decode(errors="replace").splitlines()
    problems = [line for line in lines
                if '"level": "warning"' in line.lower() or '"level": "error"' in line.lower()
                or "Traceback" in line]
    print(f"--- server log: {len(lines)} lines, the last {keep} problems ---", file=sys.stderr)
    for line in problems[-keep:]:
        # a traceback's end says what failed: long lines keep their head and their tail
        print(line if len(line) <= 4000 else f"{line[:1000]} … {line[-3000:]}", file=sys.stderr)


def api_post(url: str, body: Mapping[str, Any], token: str | None = None) -> dict[str, Any]:
    """One JSON POST to a test server, as a script would send it (no client state kept)."""
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers,  # noqa: S310
                                 method="POST")
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 (loopback test server)
        result: dict[str, Any] = json.loads(resp.read())
        return result
