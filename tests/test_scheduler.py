"""The scheduler process: presence, rq-scheduler's periodic runs as JSON jobs, delayed retries."""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime

import pytest
import redis as redis_py
from flask.testing import FlaskClient
from rq.job import Job

from alarmq import jobs, keys, registry, scheduler
from alarmq.settings import Settings
from tests.conftest import AUTH, Processes, wait_for

pytestmark = pytest.mark.slow


def test_scheduler_announces_itself_and_leaves_on_sigterm(
    redis: redis_py.Redis, processes: Processes, client: FlaskClient
) -> None:
    proc = processes.start("scheduler")
    found = wait_for(lambda: scheduler.schedulers(redis), what="the scheduler to announce itself")
    assert found[0]["pid"] == proc.pid
    wait_for(lambda: "last_tick" in scheduler.schedulers(redis)[0], what="a first tick")
    status = client.get("/api/v1/scheduler", headers=AUTH).get_json()
    assert status["leader"]["pid"] == proc.pid
    assert status["standbys"] == []
    assert status["tick_ms"] >= 0
    assert client.get("/api/v1/health").get_json()["scheduler"]["alive"] is True
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    assert time.monotonic() - started < 3
    assert scheduler.schedulers(redis) == []


def test_rq_scheduler_periodic_job_runs_as_a_json_job(
    redis: redis_py.Redis, settings: Settings, processes: Processes
) -> None:
    scheduler.silence_rq_scheduler_warnings()
    from rq_scheduler import Scheduler

    periodic = Scheduler(queue_name=keys.SCHEDULED_QUEUE, connection=redis, job_class=jobs.JSONJob)
    periodic.schedule(
        datetime.now(UTC), registry.get("echo").func, kwargs={"message": "tick"}, interval=1, repeat=None, id="tick"
    )
    log = processes.start("scheduler", env={"PYTHONWARNINGS": "error"})
    processes.start("worker")
    job = Job.fetch("tick", connection=redis, serializer=jobs.SERIALIZER)
    wait_for(lambda: job.get_status(refresh=True).value == "finished", what="the periodic job to run")
    assert job.return_value(refresh=True) == "tick"
    assert job.origin == keys.SCHEDULED_QUEUE
    text = processes.log_of(log)
    assert "Warning" not in text and "Traceback" not in text


def test_delayed_retry_runs_only_with_a_scheduler(
    redis: redis_py.Redis, settings: Settings, processes: Processes
) -> None:
    registry.load(["tests.tasks"])
    env = {"ALARMQ_TASK_MODULES": "tests.tasks"}
    processes.start("worker", env=env)
    job = jobs.enqueue(redis, settings, "flaky", {"key": "a"})
    wait_for(lambda: job.get_status(refresh=True).value == "scheduled", what="the retry to be scheduled")
    time.sleep(1.5)  # past the 1 s retry interval: nothing moves it without a scheduler
    assert job.get_status(refresh=True).value == "scheduled"
    processes.start("scheduler", env=env)
    wait_for(lambda: job.get_status(refresh=True).value == "finished", what="the retry to run")
    assert job.return_value(refresh=True) == 2
