"""The leader's decisions, driven with an injected clock: one step of the scheduler at a time."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis as redis_py

from alarmq import keys, ledger, registry, schedules
from alarmq.scheduler import SchedulerProcess
from alarmq.settings import Settings

T = 1_800_000_000  # a whole second, far from any DST change


@pytest.fixture
def leader(redis: redis_py.Redis, settings: Settings) -> Iterator[SchedulerProcess]:
    """Return a scheduler process object that the test steps by hand."""
    registry.load(["tests.tasks"])
    process = SchedulerProcess(settings, redis)
    yield process
    process.lease.release()


def create(redis: redis_py.Redis, now: float, **fields: Any) -> dict[str, Any]:
    body = {"id": "tick", "task": "tally", "kwargs": {"name": "tick"}, "interval": 10, **fields}
    return schedules.create(redis, body, now)


def outcomes(redis: redis_py.Redis, sid: str = "tick") -> list[tuple[int, str]]:
    return [(int(e["at"]), e["outcome"] + (f":{e['reason']}" if e["outcome"] == "skipped" else ""))
            for e in ledger.all_records(redis, sid)]  # fmt: skip


def tallies(redis: redis_py.Redis, name: str = "tick") -> dict[str, int]:
    return {k.decode(): int(v) for k, v in redis.hgetall(f"test:tally:{name}").items()}


def pending(leader: SchedulerProcess, sid: str = "tick") -> list[int]:
    return [slot for _, slot in leader.producer.pending(sid)]


def test_each_slot_is_enqueued_when_due_and_the_next_one_registered(
    redis: redis_py.Redis, leader: SchedulerProcess, run_jobs: Callable[[], int]
) -> None:
    create(redis, T)
    leader.step(T + 1)
    assert pending(leader) == [T + 10]
    assert leader.step(T + 5) == pytest.approx(0.4)  # renews the lease before the slot is due
    assert outcomes(redis) == []
    leader.step(T + 10)
    assert outcomes(redis) == [(T + 10, "enqueued")]
    assert pending(leader) == [T + 20]
    run_jobs()
    assert outcomes(redis) == [(T + 10, "finished")]
    assert tallies(redis) == {str(T + 10): 1}


def test_disabled_and_paused_slots_are_skipped_and_enabling_with_skip_fires_no_burst(
    redis: redis_py.Redis, leader: SchedulerProcess, run_jobs: Callable[[], int]
) -> None:
    create(redis, T)
    leader.step(T + 1)
    schedules.patch(redis, "tick", {"enabled": False}, T + 5)
    leader.step(T + 10)
    leader.step(T + 20)
    schedules.patch(redis, "tick", {"enabled": True}, T + 25)
    leader.step(T + 25)
    schedules.pause(redis, "tick", T + 45, T + 26)
    leader.step(T + 30)
    leader.step(T + 40)
    leader.step(T + 50)
    run_jobs()
    assert outcomes(redis) == [
        (T + 10, "skipped:disabled"),
        (T + 20, "skipped:disabled"),
        (T + 30, "skipped:paused"),
        (T + 40, "skipped:paused"),
        (T + 50, "finished"),
    ]
    assert tallies(redis) == {str(T + 50): 1}


def test_enabling_with_misfire_once_fires_one_run_for_the_skipped_slots(
    redis: redis_py.Redis, leader: SchedulerProcess, run_jobs: Callable[[], int]
) -> None:
    create(redis, T, misfire="once")
    leader.step(T + 1)
    schedules.patch(redis, "tick", {"enabled": False}, T + 5)
    for t in (T + 10, T + 20, T + 30):
        leader.step(t)
    schedules.patch(redis, "tick", {"enabled": True}, T + 33)
    leader.step(T + 33)
    run_jobs()
    leader.step(T + 40)
    run_jobs()
    assert [o for _, o in outcomes(redis)] == ["skipped:disabled"] * 3 + ["finished", "finished"]
    assert sum(tallies(redis).values()) == 2  # one for the three skipped, then the T+40 slot


def test_resuming_a_pause_ends_it_now(redis: redis_py.Redis, leader: SchedulerProcess) -> None:
    create(redis, T)
    leader.step(T + 1)
    schedules.pause(redis, "tick", T + 1000, T + 2)
    leader.step(T + 10)
    schedules.resume(redis, "tick", T + 12)
    leader.step(T + 20)
    assert outcomes(redis) == [(T + 10, "skipped:paused"), (T + 20, "enqueued")]


def test_a_slot_is_skipped_while_the_previous_run_is_still_going(
    redis: redis_py.Redis, leader: SchedulerProcess
) -> None:
    create(redis, T)
    leader.step(T + 1)
    leader.step(T + 10)  # enqueued, never worked
    leader.step(T + 20)
    first_job = keys.slot_job_id("tick", str(T + 10))
    assert outcomes(redis) == [(T + 10, "enqueued"), (T + 20, f"skipped:overlap: the run {first_job} is still going")]


def test_overlap_allow_runs_side_by_side(redis: redis_py.Redis, leader: SchedulerProcess) -> None:
    create(redis, T, overlap="allow")
    leader.step(T + 1)
    leader.step(T + 10)
    leader.step(T + 20)
    assert outcomes(redis) == [(T + 10, "enqueued"), (T + 20, "enqueued")]


def test_slots_nobody_produced_in_time_are_marked_missed(redis: redis_py.Redis, leader: SchedulerProcess) -> None:
    create(redis, T)
    leader.step(T + 1)
    leader.step(T + 45)  # no scheduler ran from T+1 to T+45: T+10..T+30 are more than 10 s late
    leader.step(T + 45)  # T+40 is 5 s late, within the grace: it still runs
    records = outcomes(redis)
    assert records == [(T + 10, "missed"), (T + 20, "missed"), (T + 30, "missed"), (T + 40, "enqueued")]
    assert pending(leader) == [T + 50]


def test_missed_slots_with_misfire_once_run_one(redis: redis_py.Redis, leader: SchedulerProcess) -> None:
    create(redis, T, misfire="once", overlap="allow")
    leader.step(T + 1)
    leader.step(T + 45)
    leader.step(T + 45)
    assert outcomes(redis) == [(T + 10, "enqueued"), (T + 20, "missed"), (T + 30, "missed"), (T + 40, "enqueued")]


def test_a_late_slot_within_grace_still_runs(redis: redis_py.Redis, leader: SchedulerProcess) -> None:
    create(redis, T, interval=1)
    leader.step(T + 0.5)
    leader.step(T + 4.2)  # a failover of about 3 s: every slot since still runs, late
    assert outcomes(redis) == [(T + 1, "enqueued")]
    for _ in range(4):
        leader.step(T + 4.2)
    assert [slot for slot, _ in outcomes(redis)] == [T + 1, T + 2, T + 3, T + 4]


def test_retiming_takes_effect_at_the_next_step(redis: redis_py.Redis, leader: SchedulerProcess) -> None:
    create(redis, T)
    leader.step(T + 1)
    assert pending(leader) == [T + 10]
    schedules.patch(redis, "tick", {"interval": 3}, T + 2)
    leader.step(T + 2)
    assert pending(leader) == [T + 5]
    schedules.patch(redis, "tick", {"cron": "*/5 * * * *", "timezone": "Europe/Warsaw"}, T + 3)
    leader.step(T + 3)
    assert pending(leader) == [T - T % 300 + 300]


def test_restarting_the_scheduler_ten_times_adds_no_run(
    redis: redis_py.Redis, settings: Settings, run_jobs: Callable[[], int]
) -> None:
    registry.load(["tests.tasks"])
    create(redis, T)
    for now in [T + 1] * 5 + [T + 10] * 5:
        fresh = SchedulerProcess(settings, redis)
        fresh.step(now)
        fresh.lease.release()
    run_jobs()
    assert outcomes(redis) == [(T + 10, "finished")]
    assert tallies(redis) == {str(T + 10): 1}
    assert len(redis.zrange("rq:scheduler:scheduled_jobs", 0, -1)) == 1


def test_two_leaders_at_once_still_enqueue_a_slot_once(
    redis: redis_py.Redis, settings: Settings, run_jobs: Callable[[], int]
) -> None:
    registry.load(["tests.tasks"])
    create(redis, T)
    a, b = SchedulerProcess(settings, redis), SchedulerProcess(settings, redis)
    a.step(T + 1)
    # Split brain (rq-scheduler #312): b acts as leader without the lease.
    b.producer.reconcile_all(T + 1)
    a.producer.process_due(T + 10)
    b.producer.process_due(T + 10)
    run_jobs()
    assert tallies(redis) == {str(T + 10): 1}
    a.lease.release()


def test_a_slot_delivered_twice_runs_once(
    redis: redis_py.Redis, leader: SchedulerProcess, run_jobs: Callable[[], int]
) -> None:
    create(redis, T)
    leader.step(T + 1)
    leader.step(T + 10)
    job_id = keys.slot_job_id("tick", str(T + 10))
    redis.rpush("rq:queue:scheduled", job_id)  # a second delivery of the same job
    run_jobs()
    assert tallies(redis) == {str(T + 10): 1}


def test_run_now_is_an_extra_run_in_the_ledger(
    redis: redis_py.Redis, settings: Settings, leader: SchedulerProcess, run_jobs: Callable[[], int]
) -> None:
    from alarmq import runs

    create(redis, T)
    job = runs.enqueue_now(redis, settings, schedules.load(redis, "tick"), T + 3, "run now")
    run_jobs()
    [entry] = ledger.all_records(redis, "tick")
    assert entry["outcome"] == "finished" and entry["job_id"] == job.id and entry["reason"] == "run now"


def test_deleted_schedule_leaves_no_pending_entry(redis: redis_py.Redis, leader: SchedulerProcess) -> None:
    create(redis, T)
    leader.step(T + 1)
    schedules.delete(redis, "tick")
    leader.step(T + 2)
    assert pending(leader) == []
    assert not redis.exists(f"rq:job:{keys.slot_job_id('tick', str(T + 10))}")


def test_cron_in_warsaw_fires_at_the_right_utc_instants_across_dst(
    redis: redis_py.Redis, leader: SchedulerProcess
) -> None:
    from datetime import UTC, datetime

    spring = int(datetime(2026, 3, 27, 12, tzinfo=UTC).timestamp())
    schedules.create(redis, {"id": "nightly", "task": "echo", "kwargs": {"message": "n"}, "cron": "0 3 * * *",
                             "timezone": "Europe/Warsaw", "overlap": "allow"}, spring)  # fmt: skip
    fired = []
    leader.step(spring)
    for _ in range(3):
        [slot] = pending(leader, "nightly")
        leader.step(slot)
        fired.append(datetime.fromtimestamp(slot, UTC).strftime("%m-%d %H:%M"))
    assert fired == ["03-28 02:00", "03-29 01:00", "03-30 01:00"]
    assert [o for _, o in outcomes(redis, "nightly")] == ["enqueued"] * 3


def test_misfire_once_waits_until_the_schedule_is_fully_back_on(
    redis: redis_py.Redis, leader: SchedulerProcess, run_jobs: Callable[[], int]
) -> None:
    create(redis, T, misfire="once")
    leader.step(T + 1)
    schedules.patch(redis, "tick", {"enabled": False}, T + 2)
    schedules.pause(redis, "tick", T + 1000, T + 3)
    leader.step(T + 10)
    schedules.resume(redis, "tick", T + 12)  # still disabled: nothing fires yet
    leader.step(T + 12)
    assert outcomes(redis) == [(T + 10, "skipped:disabled")]
    schedules.patch(redis, "tick", {"enabled": True}, T + 14)
    leader.step(T + 14)
    run_jobs()
    assert outcomes(redis) == [(T + 10, "skipped:disabled"), (T + 14, "finished")]
