"""The CLI: enqueue, inspect and manage jobs; one-line errors with meaningful exit codes."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import redis as redis_py
from click.testing import CliRunner

from alarmq import keys
from alarmq.cli import main
from tests.conftest import Processes


def test_enqueue_prints_the_id_and_job_shows_the_result(
    runner: CliRunner, redis: redis_py.Redis, run_jobs: Callable[[], int]
) -> None:
    result = runner.invoke(main, ["enqueue", "echo", "message=123"])
    assert result.exit_code == 0, result.output
    job_id = result.output.strip()
    assert redis.lrange("rq:queue:default", 0, -1) == [job_id.encode()]
    run_jobs()
    shown = runner.invoke(main, ["job", job_id])
    assert shown.exit_code == 0
    body = json.loads(shown.output)
    assert (body["status"], body["result"], body["source"]) == ("finished", "123", "cli")


def test_arguments_are_typed_by_the_task_schema(runner: CliRunner, redis: redis_py.Redis) -> None:
    result = runner.invoke(main, ["enqueue", "sleep", "seconds=0.5", "--queue", "scheduled"])
    assert result.exit_code == 0, result.output
    shown = json.loads(runner.invoke(main, ["job", result.output.strip()]).output)
    assert shown["kwargs"] == {"seconds": 0.5}
    assert shown["queue"] == keys.SCHEDULED_QUEUE


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["enqueue", "os.system", "command=ls"], 2, "Error: unknown task 'os.system'"),
        (["enqueue", "echo"], 2, "Error: task 'echo' needs argument 'message'"),
        (["enqueue", "echo", "message"], 2, "Error: arguments are key=value, got 'message'"),
        (["enqueue", "sleep", "seconds=soon"], 2, "Error: kwargs.seconds must be number"),
        (["job", "nope"], 3, "Error: no job 'nope'"),
        (["cancel", "nope"], 3, "Error: no job 'nope'"),
    ],
)
def test_mistakes_print_one_line_and_exit_with_a_code(
    runner: CliRunner, redis: redis_py.Redis, args: list[str], code: int, message: str
) -> None:
    result = runner.invoke(main, args)
    assert result.exit_code == code
    assert result.output.strip().startswith(message)
    assert len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output
    assert redis.dbsize() == 0


def test_unreachable_redis_exits_5(runner: CliRunner, tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = runner.invoke(main, ["jobs"], env={"REDIS_URL": f"unix://{tmp_path}/none.sock"})
    assert result.exit_code == 5
    assert "is not reachable" in result.output
    result = runner.invoke(main, ["status"], env={"REDIS_URL": "", "ALARMQ_DATA_DIR": str(tmp_path)})
    assert result.exit_code == 5
    assert "start the stack with `alarmq up`, or set REDIS_URL" in result.output


def test_bad_setting_exits_2_with_one_line(runner: CliRunner) -> None:
    result = runner.invoke(main, ["jobs"], env={"ALARMQ_WORKER_CLASS": "threads"})
    assert result.exit_code == 2
    assert (
        result.output.strip() == "Error: ALARMQ_WORKER_CLASS='threads' is not valid; it accepts auto or fork or simple"
    )


def test_jobs_lists_newest_first_and_filters(runner: CliRunner, run_jobs: Callable[[], int]) -> None:
    first = runner.invoke(main, ["enqueue", "echo", "message=a"]).output.strip()
    second = runner.invoke(main, ["enqueue", "sleep", "seconds=-1"]).output.strip()
    run_jobs()
    listed = runner.invoke(main, ["jobs"]).output.splitlines()
    assert [line.split()[0] for line in listed] == [second, first]
    failed = json.loads(runner.invoke(main, ["jobs", "--status", "failed", "--json"]).output)
    assert [j["id"] for j in failed] == [second]


def test_cancel_requeue_and_delete(runner: CliRunner, redis: redis_py.Redis, run_jobs: Callable[[], int]) -> None:
    job_id = runner.invoke(main, ["enqueue", "echo", "message=a"]).output.strip()
    assert runner.invoke(main, ["cancel", job_id]).exit_code == 0
    assert redis.llen("rq:queue:default") == 0
    assert runner.invoke(main, ["requeue", job_id]).exit_code == 0
    assert redis.lrange("rq:queue:default", 0, -1) == [job_id.encode()]
    run_jobs()
    again = runner.invoke(main, ["requeue", job_id])
    assert again.exit_code == 4
    assert "only failed, stopped or canceled" in again.output
    assert runner.invoke(main, ["delete", job_id]).exit_code == 0
    assert not redis.exists(f"rq:job:{job_id}")


def test_tasks_and_status(runner: CliRunner) -> None:
    tasks = runner.invoke(main, ["tasks"]).output
    assert "echo(message)  Return the message unchanged." in tasks
    status = runner.invoke(main, ["status"])
    assert status.exit_code == 0
    assert "status:    degraded" in status.output
    assert "queues:    checks=0, default=0, scheduled=0" in status.output


@pytest.mark.slow
def test_enqueue_wait_prints_the_result_of_a_real_worker(runner: CliRunner, processes: Processes) -> None:
    processes.start("worker")
    result = runner.invoke(main, ["enqueue", "echo", "message=hello", "--wait", "--wait-timeout", "30"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == '"hello"'
    failed = runner.invoke(main, ["enqueue", "sleep", "seconds=-1", "--wait", "--wait-timeout", "30"])
    assert failed.exit_code == 1
    assert "failed: ValueError: seconds must be zero or more" in failed.output
