"""Find jobs whose worker died mid-job and retry or fail them, with an event.

RQ alone notices a dead SimpleWorker only after the job's timeout plus a
minute, and only when a worker on that queue runs maintenance (about 15 min
with defaults). alarmq workers refresh a 10 s liveness key instead, so a job
whose worker key is gone is abandoned, and RQ's own clean-up retries it (when
it has retries left) or moves it to the failed registry.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from rq.executions import Execution
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry

from alarmq import events, jobs, keys
from alarmq.connection import Redis
from alarmq.workers import ALIVE_TTL, NAME_PREFIX

log = logging.getLogger(__name__)

CLAIM_TTL = 60


def reap(conn: Redis, queues: Iterable[str]) -> list[str]:
    """Retry or fail the jobs of dead alarmq workers on `queues`; return their ids."""
    reaped: list[str] = []
    for name in queues:
        registry = StartedJobRegistry(name, connection=conn, serializer=jobs.SERIALIZER)
        dead: list[tuple[str, str]] = []
        for job_id, execution_id in registry.get_job_and_execution_ids(cleanup=False):
            try:
                worker = Execution.fetch(execution_id, job_id, connection=conn)
            except ValueError:
                continue  # the execution expired: RQ's own clean-up owns it now
            if not worker.worker_name.startswith(NAME_PREFIX):
                continue  # a plain rq worker: RQ's own heartbeat rules apply
            if conn.exists(keys.worker_alive(worker.worker_name)):
                continue
            # Two reapers (pool parents, schedulers) may look at once; one wins.
            if not conn.set(keys.reap_claim(job_id), 1, nx=True, ex=CLAIM_TTL):
                continue
            dead.append((job_id, worker.worker_name))
            # Expire the entry now so RQ's clean-up treats it as abandoned.
            conn.zadd(registry.key, {f"{job_id}:{execution_id}": 0}, xx=True)
        if not dead:
            continue
        registry.cleanup(timestamp=1)
        for job_id, worker_name in dead:
            _announce(conn, job_id, worker_name)
            reaped.append(job_id)
    return reaped


def _announce(conn: Redis, job_id: str, worker_name: str) -> None:
    reason = f"worker {worker_name} died while running the job (no liveness for {ALIVE_TTL}s)"
    try:
        job = Job.fetch(job_id, connection=conn, serializer=jobs.SERIALIZER)
    except Exception:  # deleted meanwhile: nothing left to announce
        return
    status = job.get_status()
    job.meta["error"] = reason
    job.save_meta()  # type: ignore[no-untyped-call]
    kind = "job.retrying" if status in (JobStatus.QUEUED, JobStatus.SCHEDULED) else "job.failed"
    log.warning("job %s: %s; %s", job_id, reason, "retrying" if kind == "job.retrying" else "marked failed")
    events.publish(conn, kind, {"id": job_id, "task": job.meta.get("task"), "error": reason, "status": status.value})
