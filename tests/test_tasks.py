"""The built-in tasks, called directly and against a real local HTTP server."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from alarmq import tasks


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/slow":
            time.sleep(2)
        self.send_response({"/missing": 404}.get(self.path, 200))
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def target() -> Iterator[str]:
    """Serve a tiny HTTP target on a free port."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_echo_and_sleep() -> None:
    assert tasks.echo("hi") == "hi"
    started = time.monotonic()
    assert tasks.sleep(0.05) == 0.05
    assert time.monotonic() - started >= 0.05
    with pytest.raises(ValueError, match="zero or more"):
        tasks.sleep(-1)


def test_http_check_reports_status_and_latency(target: str) -> None:
    ok = tasks.http_check(f"{target}/")
    assert ok["status"] == 200 and ok["ok"] is True
    assert 0 < ok["latency_ms"] < 2000
    missing = tasks.http_check(f"{target}/missing")
    assert missing["status"] == 404 and missing["ok"] is False


def test_http_check_times_out(target: str) -> None:
    started = time.monotonic()
    with pytest.raises(httpx.TimeoutException):
        tasks.http_check(f"{target}/slow", timeout=0.3)
    assert time.monotonic() - started < 1.5


def test_http_check_refuses_other_schemes() -> None:
    with pytest.raises(ValueError, match="http:// or https://"):
        tasks.http_check("file:///etc/passwd")
