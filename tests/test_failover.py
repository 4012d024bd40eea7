"""Real scheduler processes: failover, restarts, and web processes that never schedule."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest
import redis as redis_py
import requests

from alarmq import ledger, registry, scheduler, schedules
from tests.conftest import Processes, free_port, wait_for

pytestmark = pytest.mark.slow

TASKS = {"ALARMQ_TASK_MODULES": "tests.tasks"}


def tick_schedule(redis: redis_py.Redis, **fields: object) -> None:
    registry.load(["tests.tasks"])
    body = {"id": "tick", "task": "tally", "kwargs": {"name": "tick"}, "interval": 1, **fields}
    schedules.create(redis, body, time.time())


def leader_pid(redis: redis_py.Redis) -> int | None:
    leader = scheduler.status(redis)["leader"]
    return int(leader["pid"]) if leader else None


def executions(redis: redis_py.Redis) -> dict[int, int]:
    return {int(k): int(v) for k, v in redis.hgetall("test:tally:tick").items()}


def test_three_schedulers_run_every_slot_once_across_a_leader_kill(redis: redis_py.Redis, processes: Processes) -> None:
    tick_schedule(redis, overlap="allow")  # every slot must run, even if a worker lags a little
    schedulers = {p.pid: p for p in (processes.start("scheduler", env=TASKS) for _ in range(3))}
    processes.start("worker", "--concurrency", "2", env=TASKS)
    first = wait_for(lambda: leader_pid(redis), what="a leader")
    wait_for(lambda: len(executions(redis)) >= 15, timeout=30, what="15 slots")

    os.kill(first, signal.SIGKILL)
    schedulers[first].wait()
    killed_at = time.monotonic()
    second = wait_for(lambda: (pid := leader_pid(redis)) not in (None, first) and pid, timeout=10, what="a new leader")
    takeover = time.monotonic() - killed_at
    assert second in schedulers and takeover < 3.0

    wait_for(lambda: len(executions(redis)) >= 32, timeout=40, what="32 slots")
    for p in schedulers.values():
        p.send_signal(signal.SIGTERM)
    ran = executions(redis)
    records = {int(e["slot"]): e for e in ledger.all_records(redis, "tick")}
    assert set(ran.values()) == {1}, f"a slot ran more than once: {ran}"
    done = {slot for slot, e in records.items() if e["outcome"] in ("finished", "started", "enqueued")}
    missed = {slot for slot, e in records.items() if e["outcome"] == "missed"}
    assert set(ran) <= done
    first_slot, last_slot = min(records), max(ran)
    expected = set(range(first_slot, last_slot + 1))
    assert expected <= done | missed, f"slots neither run nor marked missed: {sorted(expected - done - missed)}"
    assert not missed & set(ran)


def test_restarting_the_scheduler_ten_times_adds_no_run(redis: redis_py.Redis, processes: Processes) -> None:
    tick_schedule(redis)
    processes.start("worker", env=TASKS)
    for _ in range(10):
        proc = processes.start("scheduler", env=TASKS)
        wait_for(lambda p=proc: leader_pid(redis) == p.pid, what="the scheduler to lead")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    wait_for(lambda: executions(redis), what="some runs")
    ran = executions(redis)
    assert set(ran.values()) == {1}
    # Each restart left at most the one pending slot; nothing piled up to burst.
    pending = [m for m in redis.zrange("rq:scheduler:scheduled_jobs", 0, -1) if m.startswith(b"sched-tick-")]
    assert len(pending) == 1


def web_serves(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2).status_code in (200, 503)
    except requests.ConnectionError:
        return False


@pytest.mark.parametrize("server", ["flask-reloader", "gunicorn-3-workers"])
def test_web_processes_never_schedule(redis: redis_py.Redis, processes: Processes, tmp_path: Path, server: str) -> None:
    port = free_port()
    bin_dir = Path(sys.executable).parent
    if server == "flask-reloader":
        argv = [str(bin_dir / "flask"), "--app", "alarmq.web:create_app()", "run", "--reload", "--port", str(port)]
    else:
        argv = [str(bin_dir / "gunicorn"), "-w", "3", "-b", f"127.0.0.1:{port}", "alarmq.web:create_app()"]
    import subprocess

    log = open(tmp_path / "web.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(argv, env=processes.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: web_serves(port), timeout=20, what=f"{server} to serve")
        tick_schedule(redis)  # a schedule exists: a hidden scheduler would now produce runs
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:  # a ghost scheduler would show up within its first tick
            assert scheduler.schedulers(redis) == []
            assert redis.get("alarmq:scheduler-leader") is None
            assert redis.zcard("rq:scheduler:scheduled_jobs") == 0
            time.sleep(0.1)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
        log.close()
