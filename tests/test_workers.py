"""Worker processes: both modes, recycling, timeouts, cancel, warm shutdown and dead workers."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis as redis_py
from rq import Worker
from rq.job import Job

from alarmq import jobs, keys, registry
from alarmq.settings import Settings
from tests.conftest import Processes, pid_alive, wait_for

pytestmark = pytest.mark.slow


def enqueue(redis: redis_py.Redis, settings: Settings, task: str, **kwargs: object) -> Job:
    options = {k: kwargs.pop(k) for k in ("timeout", "retries") if k in kwargs}
    return jobs.enqueue(redis, settings, task, kwargs, **options)  # type: ignore[arg-type]


def status_of(job: Job) -> str:
    return job.get_status(refresh=True).value


def wait_status(job: Job, *statuses: str, timeout: float = 15) -> str:
    """Wait until the job is in one of `statuses`, then reload all its fields."""
    status = wait_for(lambda: (s := status_of(job)) in statuses and s, timeout=timeout, what=f"{job.id} in {statuses}")
    job.refresh()
    return str(status)


def workers_up(redis: redis_py.Redis, count: int = 1) -> list[Worker]:
    return wait_for(lambda: len(w := Worker.all(connection=redis)) >= count and w, what=f"{count} worker(s)")


def test_simple_worker_runs_jobs_in_process_and_records_results(
    redis: redis_py.Redis, settings: Settings, processes: Processes
) -> None:
    processes.start("worker")
    job = enqueue(redis, settings, "echo", message="hi")
    assert wait_status(job, "finished") == "finished"
    assert job.return_value() == "hi"
    assert job.worker_name.startswith("alarmq-")


def test_fork_worker_runs_jobs_in_a_child(redis: redis_py.Redis, settings: Settings, processes: Processes) -> None:
    processes.start("worker", "--class", "fork")
    job = enqueue(redis, settings, "echo", message="forked")
    assert wait_status(job, "finished") == "finished"
    assert job.return_value() == "forked"


@pytest.mark.parametrize("worker_class", ["simple", "fork"])
def test_job_timeout_is_enforced(
    redis: redis_py.Redis, settings: Settings, processes: Processes, worker_class: str
) -> None:
    processes.start("worker", "--class", worker_class)
    workers_up(redis)
    job = enqueue(redis, settings, "sleep", seconds=30, timeout=1)
    started = time.monotonic()
    assert wait_status(job, "failed", timeout=10) == "failed"
    assert time.monotonic() - started < 6
    assert "JobTimeoutException" in jobs.describe(job)["error"]


def test_simple_worker_is_replaced_after_max_jobs(
    redis: redis_py.Redis, settings: Settings, processes: Processes
) -> None:
    processes.start("worker", env={"ALARMQ_WORKER_MAX_JOBS": "2"})
    ran = [enqueue(redis, settings, "echo", message=str(i)) for i in range(5)]
    for job in ran:
        wait_status(job, "finished")
    names = [j.worker_name for j in ran]
    assert len(set(names)) == 3
    assert "exited with code" not in processes.log_of(processes.started[0])  # a recycle is not a crash
    assert names[0] == names[1] and names[2] == names[3] and names[4] not in names[:4]


def test_simple_worker_is_replaced_above_its_memory_cap(
    redis: redis_py.Redis, settings: Settings, processes: Processes
) -> None:
    env = {"ALARMQ_WORKER_MAX_MEMORY_MB": "100", "ALARMQ_TASK_MODULES": "tests.tasks"}
    processes.start("worker", env=env)
    registry.load(["tests.tasks"])
    small = [enqueue(redis, settings, "leak", mb=1) for _ in range(2)]
    big = enqueue(redis, settings, "leak", mb=120)
    after = enqueue(redis, settings, "leak", mb=1)
    for job in [*small, big, after]:
        wait_status(job, "finished")
    assert [j.return_value() for j in small] == [1, 2]  # one process, leaking
    assert small[0].worker_name == small[1].worker_name == big.worker_name
    assert big.return_value() == 122
    assert after.return_value() == 1  # a fresh process
    assert after.worker_name != big.worker_name


def test_concurrency_runs_jobs_side_by_side(redis: redis_py.Redis, settings: Settings, processes: Processes) -> None:
    processes.start("worker", "--concurrency", "2")
    workers_up(redis, 2)
    a, b = enqueue(redis, settings, "sleep", seconds=1.5), enqueue(redis, settings, "sleep", seconds=1.5)
    wait_for(lambda: status_of(a) == "started" and status_of(b) == "started", what="both jobs running at once")
    wait_status(a, "finished")
    wait_status(b, "finished")
    assert a.worker_name != b.worker_name


def test_scheduled_queue_is_served_before_default(
    redis: redis_py.Redis, settings: Settings, processes: Processes
) -> None:
    backlog = [enqueue(redis, settings, "echo", message=str(i)) for i in range(50)]
    urgent = jobs.enqueue(redis, settings, "echo", {"message": "now"}, queue_name=keys.SCHEDULED_QUEUE)
    processes.start("worker")
    for job in [urgent, *backlog]:
        wait_status(job, "finished")
    assert urgent.ended_at is not None
    assert all(j.started_at is not None and urgent.ended_at <= j.started_at for j in backlog)


def test_cancel_stops_a_running_job_in_a_simple_worker(
    redis: redis_py.Redis, settings: Settings, processes: Processes
) -> None:
    processes.start("worker")
    job = enqueue(redis, settings, "sleep", seconds=30)
    wait_status(job, "started")
    jobs.cancel(redis, job.id)
    assert wait_status(job, "stopped", timeout=5) == "stopped"
    after = enqueue(redis, settings, "echo", message="still working")
    assert wait_status(after, "finished") == "finished"


def test_idle_worker_stops_within_5s_of_sigterm(redis: redis_py.Redis, processes: Processes) -> None:
    worker = processes.start("worker", "--concurrency", "2")
    children = [w.pid for w in workers_up(redis, 2)]
    started = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(10) == 0
    assert time.monotonic() - started < 5
    assert not any(pid_alive(pid) for pid in children)
    assert Worker.all(connection=redis) == []


def test_sigterm_lets_the_running_job_finish(redis: redis_py.Redis, settings: Settings, processes: Processes) -> None:
    worker = processes.start("worker")
    job = enqueue(redis, settings, "sleep", seconds=1.5)
    wait_status(job, "started")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(15) == 0
    assert status_of(job) == "finished"


def kill_worker_running(job: Job) -> int:
    pid = int(job.worker_name.split("-")[-2])
    os.kill(pid, signal.SIGKILL)
    return pid


def events_of(redis: redis_py.Redis, type_: str) -> list[dict[str, object]]:
    from alarmq import events

    return [e for e in events.read(redis, None, 100) if e["type"] == type_]


def test_job_of_a_killed_worker_is_failed_with_a_reason_and_an_event(
    redis: redis_py.Redis, settings: Settings, processes: Processes
) -> None:
    processes.start("worker")
    job = enqueue(redis, settings, "sleep", seconds=60, timeout=300)
    wait_status(job, "started")
    killed_at = time.monotonic()
    kill_worker_running(job)
    assert wait_status(job, "failed", timeout=30) == "failed"
    assert time.monotonic() - killed_at < 20
    described = jobs.describe(job)
    assert "died while running the job" in json.dumps(described)
    [event] = events_of(redis, "job.failed")
    assert event["data"]["id"] == job.id  # type: ignore[index]
    # The pool started a replacement that keeps working.
    after = enqueue(redis, settings, "echo", message="replacement")
    assert wait_status(after, "finished") == "finished"


def test_job_of_a_killed_worker_is_retried_when_it_has_retries(
    redis: redis_py.Redis, settings: Settings, processes: Processes
) -> None:
    processes.start("worker")
    job = enqueue(redis, settings, "sleep", seconds=2, retries=1)
    wait_status(job, "started")
    first = job.worker_name
    kill_worker_running(job)
    assert wait_status(job, "finished", timeout=40) == "finished"
    job.refresh()
    assert job.worker_name != first
    assert events_of(redis, "job.retrying")[0]["data"]["id"] == job.id  # type: ignore[index]


def test_scheduler_reaps_jobs_when_the_whole_worker_is_gone(
    redis: redis_py.Redis, settings: Settings, processes: Processes, run_jobs: Callable[[], int]
) -> None:
    worker = processes.start("worker")
    processes.start("scheduler")
    job = enqueue(redis, settings, "sleep", seconds=60, timeout=300)
    wait_status(job, "started")
    child = kill_worker_running(job)
    os.killpg(worker.pid, signal.SIGKILL)  # the pool parent too: nobody left to notice
    worker.wait()
    wait_for(lambda: not pid_alive(child), what="the killed worker process to be gone")
    assert wait_status(job, "failed", timeout=30) == "failed"


def test_fork_worker_publishes_job_events_from_the_work_horse(
    redis: redis_py.Redis, settings: Settings, processes: Processes
) -> None:
    processes.start("worker", "--class", "fork")
    job = enqueue(redis, settings, "echo", message="forked")
    wait_status(job, "finished")
    seen = wait_for(
        lambda: [e["type"] for e in events_of_job(redis, job.id)] if len(events_of_job(redis, job.id)) >= 3 else None,
        what="the job's events",
    )
    assert seen == ["job.queued", "job.started", "job.finished"]


def events_of_job(redis: redis_py.Redis, job_id: str) -> list[dict[str, Any]]:
    from alarmq import events

    return [e for e in events.read(redis, "0-0", 500, ("job.*",)) if e["data"].get("id") == job_id]
