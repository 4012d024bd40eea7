"""A Redis restart under a running stack: every process reconnects and nothing stored is lost."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_py
import requests

from alarmq.embedded import EmbeddedRedis
from tests.conftest import AUTH, Processes, free_port, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """Start a Redis this test may stop and start again (with AOF, on its own dir)."""
    server = EmbeddedRedis(tmp_path / "restartable")
    server.start()
    yield server
    server.stop()


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=3).status_code == 200
    except requests.ConnectionError:
        return False


def job_status(base: str, job_id: str) -> object:
    try:
        return requests.get(f"{base}/jobs/{job_id}", headers=AUTH, timeout=3).json().get("status")
    except (requests.ConnectionError, ValueError):
        return None


def run_echo(base: str, message: str) -> str:
    created = requests.post(
        f"{base}/jobs", json={"task": "echo", "kwargs": {"message": message}}, headers=AUTH, timeout=5
    )
    assert created.status_code == 202, created.text
    job_id: str = created.json()["id"]
    wait_for(lambda: job_status(base, job_id) == "finished", timeout=30, interval=0.1, what=f"job {message}")
    return job_id


def test_stack_carries_on_after_redis_restarts(processes: Processes, own_redis: EmbeddedRedis) -> None:
    port = free_port()
    env = {"REDIS_URL": own_redis.url, "PORT": str(port)}
    running = [processes.start(role, env=env) for role in ("web", "worker", "scheduler")]
    base = f"http://127.0.0.1:{port}/api/v1"
    wait_for(lambda: answers(f"{base}/health"), timeout=20, what="the web process")
    before = run_echo(base, "before")

    own_redis.stop()
    down = requests.get(f"{base}/health", timeout=5)
    assert down.status_code == 503
    assert down.json()["redis"]["ok"] is False
    own_redis.start()

    after = run_echo(base, "after")
    assert job_status(base, before) == "finished"  # persisted through the restart
    conn = redis_py.Redis.from_url(own_redis.url)
    assert conn.hget(f"rq:job:{after}", "status") == b"finished"
    conn.close()
    assert all(p.poll() is None for p in running), "a process died instead of reconnecting"
    wait_for(
        lambda: requests.get(f"{base}/health", timeout=3).json()["scheduler"]["alive"],
        timeout=40,
        what="the scheduler to announce itself again",
    )
