"""Run one slot of a schedule inside a worker, at most once, and record it in the ledger.

rq-scheduler's lock can expire mid-tick (rq-scheduler #312), so two schedulers
might both enqueue a slot; the slot's "ran" key is claimed before the task
runs, so whatever enqueued it, a slot executes at most once.
"""

from __future__ import annotations

from typing import Any

from rq import get_current_job
from rq.job import Job

from alarmq import events, jobs, keys, ledger, registry, schedules
from alarmq.connection import Redis
from alarmq.errors import NotFound
from alarmq.settings import Settings

RAN_TTL = 7 * 86400


def run_slot(schedule_id: str, slot: str) -> Any:
    """Run the schedule's task for `slot` unless that slot already ran."""
    job = get_current_job()
    assert job is not None, "run_slot runs inside an RQ worker"
    conn = job.connection
    if not conn.set(keys.slot_ran(schedule_id, slot), job.id, nx=True, ex=RAN_TTL):
        return {"skipped": "this slot already ran"}
    try:
        spec = schedules.load(conn, schedule_id)
    except NotFound:
        return {"skipped": "the schedule was deleted"}
    loud = not schedules.quiet(spec)
    ledger.update(conn, schedule_id, slot, "started", loud, job_id=job.id, worker=job.worker_name)
    try:
        result = registry.get(spec["task"]).func(**spec["kwargs"])
    except Exception as exc:
        ledger.update(conn, schedule_id, slot, "failed", error=f"{type(exc).__name__}: {exc}"[:300])
        raise
    ledger.update(conn, schedule_id, slot, "finished", loud)
    return result


def enqueue_now(conn: Redis, settings: Settings, schedule: dict[str, Any], now: float, reason: str) -> Job:
    """Enqueue an extra run of the schedule right away and record it in the ledger."""
    slot = f"manual-{int(now * 1000)}"
    sid = schedule["id"]
    job = jobs.queue(conn, schedule["queue"]).enqueue_call(
        run_slot,
        args=(sid, slot),
        job_id=keys.slot_job_id(sid, slot),
        timeout=schedule["timeout"] or settings.job_timeout,
        result_ttl=settings.result_ttl,
        failure_ttl=settings.failure_ttl,
        description=f"{schedule['task']} for schedule {sid}, run now",
        meta={"task": schedule["task"], "source": "schedule-run", "schedule": sid, "slot": slot},
    )
    jobs.index(conn, job.id)
    ledger.record(conn, sid, slot, now, "enqueued", job_id=job.id, reason=reason)
    events.publish(conn, "job.queued", events.job_data(job, source="schedule-run"))
    return job
