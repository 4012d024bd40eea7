"""Enqueue registered tasks on RQ and read, list, cancel, requeue and delete jobs.

Every job alarmq creates uses RQ's JSON serializer, so nothing a caller sends
can become a pickle that a worker loads.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Any, cast

from redis.client import Pipeline
from rq import Queue, Retry
from rq.command import send_stop_job_command
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from alarmq import events, keys, registry
from alarmq.connection import Redis
from alarmq.errors import Conflict, Invalid, NotFound
from alarmq.settings import Settings

SERIALIZER = JSONSerializer
JOB_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
STATUSES = tuple(s.value for s in JobStatus)
INDEX_CAP = 100_000
MAX_TIMEOUT = 7 * 86400
MAX_RETRIES = 25
# How many index entries one list call may look at while filtering.
SCAN_BUDGET = 2000


class JSONJob(Job):
    """A Job that uses the JSON serializer unless told otherwise (for rq-scheduler)."""

    def __init__(self, id: str | None = None, connection: Redis | None = None, serializer: Any = None) -> None:
        super().__init__(id=id, connection=connection, serializer=serializer or SERIALIZER)


def queue(conn: Redis, name: str) -> Queue:
    """Return the RQ queue `name` with alarmq's serializer."""
    return Queue(name, connection=conn, serializer=SERIALIZER)


def known_queues() -> set[str]:
    """Return the queues a job may be sent to: alarmq's own and every task's."""
    return {*keys.WORKER_QUEUES, *registry.queues()}


def enqueue(
    conn: Redis,
    settings: Settings,
    task_name: object,
    kwargs: object = None,
    *,
    queue_name: object = None,
    timeout: object = None,
    retries: object = None,
    source: str = "api",
) -> Job:
    """Validate a call of a registered task and put it on its queue."""
    task = registry.get(task_name)
    clean = task.validate(kwargs)
    qname = task.queue if queue_name is None else queue_name
    if not isinstance(qname, str) or qname not in known_queues():
        raise Invalid(f"queue must be one of {', '.join(sorted(known_queues()))}, got {qname!r}")
    job_timeout = whole(timeout, "timeout", 1, MAX_TIMEOUT, task.timeout or settings.job_timeout)
    max_retries = whole(retries, "retries", 0, MAX_RETRIES, task.retries)
    retry = Retry(max=max_retries, interval=list(task.retry_intervals) or 0) if max_retries else None
    # One round trip: RQ's enqueue and alarmq's listing entry share a pipeline.
    with conn.pipeline() as pipe:
        job = queue(conn, qname).enqueue_call(
            task.func,
            kwargs=clean,
            timeout=job_timeout,
            result_ttl=settings.result_ttl,
            failure_ttl=settings.failure_ttl,
            description=_describe_call(task.name, clean),
            meta={"task": task.name, "source": source},
            retry=retry,
            pipeline=pipe,
        )
        index(pipe, job.id)
        pipe.execute()
    events.publish(conn, "job.queued", events.job_data(job, source=source))
    return job


def index(conn: Redis | Pipeline, job_id: str, at: float | None = None) -> None:
    """Record `job_id` in the newest-first listing (queued on `conn` when it is a pipeline)."""
    if isinstance(conn, Pipeline):
        conn.zadd(keys.jobs_index(), {job_id: time.time() if at is None else at})
        conn.zremrangebyrank(keys.jobs_index(), 0, -INDEX_CAP - 1)
        return
    with conn.pipeline(transaction=False) as pipe:
        index(pipe, job_id, at)
        pipe.execute()


def fetch(conn: Redis, job_id: str) -> Job:
    """Return the job `job_id`, or raise NotFound."""
    if not JOB_ID_RE.fullmatch(job_id):
        raise NotFound(f"no job {job_id!r}: job ids are letters, digits, '_' and '-'")
    try:
        return Job.fetch(job_id, connection=conn, serializer=SERIALIZER)
    except NoSuchJobError:
        raise NotFound(f"no job {job_id!r}; it may have expired after its result TTL") from None


def describe(job: Job, status: str | None = None) -> dict[str, Any]:
    """Return the job as the API shows it."""
    status = status or job.get_status(refresh=False) or "unknown"
    result = error = traceback = None
    if status == JobStatus.FINISHED:
        result = job.return_value()
    elif status in (JobStatus.FAILED, JobStatus.STOPPED):
        latest = job.latest_result()
        traceback = latest.exc_string if latest is not None else None
        error = job.meta.get("error") or _last_line(traceback) or status
    try:
        kwargs: Any = job.kwargs
    except Exception:  # a job written by another client with another serializer
        kwargs = None
    return {
        "id": job.id,
        "task": job.meta.get("task"),
        "kwargs": kwargs,
        "status": str(status.value if isinstance(status, JobStatus) else status),
        "result": result,
        "error": error,
        "traceback": traceback,
        "queue": job.origin,
        "origin": job.origin,
        "source": job.meta.get("source"),
        "worker": job.worker_name,
        "enqueued_at": _iso(job.enqueued_at or job.created_at),
        "started_at": _iso(job.started_at),
        "ended_at": _iso(job.ended_at),
        "timeout": job.timeout,
        "retries_left": job.retries_left,
    }


def list_jobs(
    conn: Redis,
    *,
    status: str | None = None,
    task: str | None = None,
    limit: int = 50,
    cursor: float | None = None,
) -> tuple[list[dict[str, Any]], float | None]:
    """Return a newest-first page of jobs and the cursor of the next page (None at the end)."""
    if status is not None and status not in STATUSES:
        raise Invalid(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
    page: list[dict[str, Any]] = []
    scanned = 0
    upper: str = "+inf" if cursor is None else f"({cursor!r}"
    next_cursor: float | None = None
    while len(page) < limit and scanned < SCAN_BUDGET:
        batch: list[tuple[bytes, float]] = cast(
            Any, conn.zrevrangebyscore(keys.jobs_index(), upper, "-inf", start=0, num=100, withscores=True)
        )
        if not batch:
            return page, None
        scanned += len(batch)
        ids = [m.decode() for m, _ in batch]
        found = Job.fetch_many(ids, connection=conn, serializer=SERIALIZER)
        gone = [jid for jid, job in zip(ids, found, strict=True) if job is None]
        if gone:
            conn.zrem(keys.jobs_index(), *gone)  # expired after their TTL
        statuses = _statuses(conn, [j for j in found if j is not None])
        for (_, score), job in zip(batch, found, strict=True):
            next_cursor = score
            if job is None or (task is not None and job.meta.get("task") != task):
                continue
            if status is not None and statuses[job.id] != status:
                continue
            page.append(describe(job, statuses[job.id]))
            if len(page) == limit:
                break
        upper = f"({next_cursor!r}"
    return page, next_cursor


def cancel(conn: Redis, job_id: str) -> Job:
    """Cancel a waiting job, or ask its worker to stop a running one."""
    job = fetch(conn, job_id)
    status = job.get_status()
    if status == JobStatus.STARTED:
        try:
            send_stop_job_command(conn, job.id, serializer=SERIALIZER)
        except InvalidJobOperation:
            raise Conflict(f"job {job_id} is between states; try again") from None
        return job
    if status in (JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED, JobStatus.CREATED):
        try:
            job.cancel()
        except InvalidJobOperation as exc:
            raise Conflict(f"job {job_id} cannot be canceled: {exc}") from None
        events.publish(conn, "job.canceled", events.job_data(job, status="canceled"))
        return job
    raise Conflict(f"job {job_id} is {status.value}; only queued, scheduled or running jobs can be canceled")


def requeue(conn: Redis, job_id: str) -> Job:
    """Put a failed, stopped or canceled job back on its queue."""
    job = fetch(conn, job_id)
    status = job.get_status()
    if status == JobStatus.FAILED:
        job.requeue()
    elif status in (JobStatus.STOPPED, JobStatus.CANCELED):
        # RQ only requeues from the failed registry; these we enqueue again ourselves.
        queue(conn, job.origin).enqueue_job(job)
    else:
        raise Conflict(f"job {job_id} is {status.value}; only failed, stopped or canceled jobs can be requeued")
    index(conn, job.id)
    events.publish(conn, "job.queued", events.job_data(job, source="requeue"))
    return job


def delete(conn: Redis, job_id: str) -> None:
    """Delete a job that is not running, with its results."""
    job = fetch(conn, job_id)
    if job.get_status() == JobStatus.STARTED:
        raise Conflict(f"job {job_id} is running; cancel it first")
    job.delete()
    conn.zrem(keys.jobs_index(), job.id)


def _statuses(conn: Redis, jobs: list[Job]) -> dict[str, str]:
    with conn.pipeline(transaction=False) as pipe:
        for job in jobs:
            pipe.hget(job.key, "status")
        raw = pipe.execute()
    return {job.id: (s.decode() if s else "unknown") for job, s in zip(jobs, raw, strict=True)}


def whole(value: object, field: str, low: int, high: int, default: int) -> int:
    """Return `value` as a whole number in [low, high] (`default` for None), or raise Invalid."""
    if value is None:
        return default
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON has one number type: 30.0 is a whole number
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise Invalid(f"{field} must be a whole number from {low} to {high}, got {value!r}")
    return value


def _describe_call(name: str, kwargs: dict[str, Any]) -> str:
    args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    text = f"{name}({args})"
    return text if len(text) <= 200 else text[:197] + "..."


def _last_line(text: str | None) -> str | None:
    if not text:
        return None
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:500] if lines else None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
