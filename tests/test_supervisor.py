"""`alarmq up` end to end: embedded Redis, web, worker and scheduler, and nothing left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import Processes, free_port, pid_alive, wait_for

pytestmark = pytest.mark.slow


def descendants(pid: int) -> set[int]:
    """Return every live process below `pid`."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(") ", 1)[1].split()[1])
            except (FileNotFoundError, IndexError, ProcessLookupError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return {p for p in found if pid_alive(p)}


def start_stack(processes: Processes, tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    env = {"REDIS_URL": "", "ALARMQ_API_TOKEN": "", "ALARMQ_DATA_DIR": str(tmp_path / "data"), "PORT": str(port)}
    up = processes.start("up", *args, env=env)
    base = f"http://127.0.0.1:{port}/api/v1"

    def healthy() -> bool:
        try:
            return requests.get(f"{base}/health", timeout=2).json()["status"] == "ok"
        except (requests.ConnectionError, ValueError):
            return False

    wait_for(healthy, timeout=40, interval=0.2, what="the stack to report ok")
    return up, base


def enqueue_and_wait(base: str, token: str) -> dict[str, object]:
    auth = {"Authorization": f"Bearer {token}"}
    created = requests.post(f"{base}/jobs", json={"task": "echo", "kwargs": {"message": "up"}}, headers=auth, timeout=5)
    assert created.status_code == 202
    url = base.removesuffix("/api/v1") + created.json()["url"]
    return wait_for(  # type: ignore[no-any-return]
        lambda: (j := requests.get(url, headers=auth, timeout=5).json())["status"] == "finished" and j,
        what="the job to finish",
    )


@pytest.mark.parametrize("mode", ["default", "windows"])
def test_up_runs_a_job_and_ctrl_c_stops_everything(processes: Processes, tmp_path: Path, mode: str) -> None:
    up, base = start_stack(processes, tmp_path, *(["--windows-mode"] if mode == "windows" else []))
    token_file = tmp_path / "data" / "api-token"
    token = token_file.read_text().strip()
    assert oct(token_file.stat().st_mode & 0o777) == "0o600"
    assert processes.log_of(up).count(token) == 1  # printed once, at first start

    job = enqueue_and_wait(base, token)
    assert job["result"] == "up"
    server = requests.get(f"{base}/health", timeout=5).headers["Server"]
    assert ("waitress" in server) == (mode == "windows")
    stack = descendants(up.pid)
    assert len(stack) >= 4  # redis, web, worker pool and its process, scheduler

    os.killpg(up.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
    assert up.wait(40) == 0
    wait_for(lambda: not any(pid_alive(p) for p in stack), timeout=10, what="every child to exit")
    log = processes.log_of(up)
    assert "Traceback" not in log
    assert "exited with code" not in log


def test_restarted_stack_keeps_its_token_and_jobs(processes: Processes, tmp_path: Path) -> None:
    up, base = start_stack(processes, tmp_path)
    token = (tmp_path / "data" / "api-token").read_text().strip()
    job = enqueue_and_wait(base, token)
    os.killpg(up.pid, signal.SIGTERM)
    assert up.wait(40) == 0

    again, base = start_stack(processes, tmp_path)
    assert token not in processes.log_of(again)  # not printed a second time
    kept = requests.get(f"{base}/jobs/{job['id']}", headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert kept.json()["result"] == "up"  # AOF brought it back
    os.killpg(again.pid, signal.SIGTERM)
    assert again.wait(40) == 0


def test_killing_the_supervisor_leaves_no_orphan(processes: Processes, tmp_path: Path) -> None:
    up, _ = start_stack(processes, tmp_path)
    stack = descendants(up.pid)
    up.send_signal(signal.SIGKILL)
    up.wait()
    started = time.monotonic()
    wait_for(lambda: not any(pid_alive(p) for p in stack), timeout=20, what="orphans to exit")
    assert time.monotonic() - started < 15


def test_a_child_that_dies_takes_the_stack_down_loudly(processes: Processes, tmp_path: Path) -> None:
    up, base = start_stack(processes, tmp_path)
    scheduler = requests.get(f"{base}/health", timeout=5).json()["scheduler"]["processes"][0]["pid"]
    stack = descendants(up.pid)
    os.kill(scheduler, signal.SIGKILL)
    assert up.wait(40) == 1
    assert "scheduler exited with code -9; stopping the stack" in processes.log_of(up)
    wait_for(lambda: not any(pid_alive(p) for p in stack), timeout=10, what="the rest to stop")
