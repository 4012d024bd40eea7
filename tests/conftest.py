"""Fixtures that follow alarmq's entry points: redis, settings, app, client, runner, run_jobs.

The session starts one private Redis through alarmq's own embedded-server code
path (never the machine's :6379); every test starts from an empty database.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_py
from click.testing import CliRunner, Result
from flask import Flask
from flask.testing import FlaskClient

from alarmq import keys, workers
from alarmq.embedded import EmbeddedRedis
from alarmq.settings import Settings
from alarmq.web import create_app, redis_of

TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """Start one private Redis for the whole test session."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("session-redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis(redis_server: EmbeddedRedis) -> Iterator[redis_py.Redis]:
    """Return a client of the session Redis, emptied before the test."""
    conn = redis_py.Redis.from_url(redis_server.url)
    conn.flushall()
    yield conn
    conn.close()


@pytest.fixture
def settings(redis_server: EmbeddedRedis, tmp_path: Path) -> Settings:
    """Return settings pointing at the session Redis, with a known token."""
    return Settings(redis_url=redis_server.url, api_token=TOKEN, data_dir=tmp_path / "data")


@pytest.fixture
def app(settings: Settings, redis: redis_py.Redis) -> Iterator[Flask]:
    """Return the web app built by create_app."""
    app = create_app(settings)
    app.config["TESTING"] = True
    yield app
    redis_of(app).close()
    app.redis_conn.close()  # type: ignore[attr-defined]  # rq-dashboard's own client


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """Return a test client of the app."""
    return app.test_client()


@pytest.fixture
def env(settings: Settings) -> dict[str, str]:
    """Return the environment a child process or the CLI needs to reach the session Redis."""
    assert settings.redis_url
    return {
        **os.environ,
        "REDIS_URL": settings.redis_url,
        "ALARMQ_API_TOKEN": TOKEN,
        "ALARMQ_DATA_DIR": str(settings.data_dir),
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": str(ROOT),
    }


@pytest.fixture
def runner(env: dict[str, str], redis: redis_py.Redis) -> CliRunner:
    """Return a click runner whose commands reach the session Redis."""
    return CliRunner(env={k: env[k] for k in ("REDIS_URL", "ALARMQ_API_TOKEN", "ALARMQ_DATA_DIR")})


@pytest.fixture
def run_jobs(redis: redis_py.Redis, settings: Settings) -> Callable[[], int]:
    """Return a function that works every queued job in this process (a burst worker)."""

    def run() -> int:
        return workers.run(redis, settings, list(keys.WORKER_QUEUES), burst=True)

    return run


class Processes:
    """Start real alarmq processes for a test and make sure none outlives it."""

    def __init__(self, env: dict[str, str], tmp_path: Path) -> None:
        self.env = env
        self.tmp_path = tmp_path
        self.started: list[subprocess.Popen[str]] = []
        self.logs: list[Any] = []

    def start(self, *args: str, env: dict[str, str] | None = None, **kwargs: Any) -> subprocess.Popen[str]:
        """Start `python -m alarmq ARGS` in its own session, logging to a file."""
        log = open(self.tmp_path / f"{args[0]}-{len(self.started)}.log", "w")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "alarmq", *args],
            env={**self.env, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            cwd=kwargs.pop("cwd", self.tmp_path),
            **kwargs,
        )
        proc.log_path = log.name  # type: ignore[attr-defined]
        self.started.append(proc)
        self.logs.append(log)
        return proc

    def log_of(self, proc: subprocess.Popen[str]) -> str:
        """Return what the process wrote so far."""
        return Path(proc.log_path).read_text()  # type: ignore[attr-defined]

    def stop_all(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        for log in self.logs:
            log.close()


@pytest.fixture
def processes(env: dict[str, str], tmp_path: Path) -> Iterator[Processes]:
    """Start real alarmq processes; kill whatever is left at the end."""
    procs = Processes(env, tmp_path)
    yield procs
    procs.stop_all()


def assert_one_line_error(result: Result, code: int, message: str) -> None:
    """Assert a CLI call failed with `code` and printed exactly one `Error: message…` line."""
    assert result.exit_code == code, result.output
    assert result.output.startswith(f"Error: {message}"), result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert "Traceback" not in result.output


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02, what: str = "") -> Any:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


def free_port() -> int:
    """Return a TCP port that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pid_alive(pid: int) -> bool:
    """Return True if a process with `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False
