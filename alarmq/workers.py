"""Run RQ workers in alarmq's two modes and keep each one visibly alive.

`simple` runs jobs in the worker process (no fork per job, several times
faster) and replaces the process after N jobs or above M MB, which is what
Celery's max-tasks-per-child and max-memory-per-child give. `fork` forks a
child per job for tasks that leak or must be isolated. Task modules are
imported once before any fork, so no job pays for importing them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import threading
import uuid
from types import FrameType
from typing import Any

import redis
from rq import SimpleWorker, Worker
from rq.job import Job, JobStatus
from rq.queue import Queue

from alarmq import events, jobs, keys, processes, registry
from alarmq.connection import Redis
from alarmq.errors import Invalid
from alarmq.settings import Settings

log = logging.getLogger(__name__)

# A worker process refreshes its liveness key this often; the key lives
# ALIVE_TTL seconds, so a SIGKILLed worker is noticed that long after death.
ALIVE_REFRESH = 2.0
ALIVE_TTL = 10
# Exit code of a worker process that stopped to be replaced (jobs or memory cap).
RECYCLE_EXIT = 3
NAME_PREFIX = "alarmq-"


def worker_name() -> str:
    """Return a unique name for a worker process that marks it as alarmq's."""
    return f"{NAME_PREFIX}{socket.gethostname()[:30]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class JobStopped(Exception):
    """Raised inside a running job that an operator canceled."""


class _Liveness:
    """Refresh a short-lived key from a thread while the worker process lives."""

    def __init__(self, conn: Redis, name: str) -> None:
        self.conn = conn
        self.key = keys.worker_alive(name)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="alarmq-liveness", daemon=True)

    def start(self) -> None:
        self._beat()
        self.thread.start()

    def _beat(self) -> None:
        try:
            self.conn.set(self.key, os.getpid(), ex=ALIVE_TTL)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
            log.warning("liveness: redis unavailable (%s); retrying", exc)

    def _run(self) -> None:
        while not self.stop.wait(ALIVE_REFRESH):
            self._beat()

    def close(self) -> None:
        self.stop.set()
        # If Redis is gone the key expires by itself.
        with contextlib.suppress(redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError):
            self.conn.delete(self.key)


class _AlarmqMixin:
    """Liveness and recycling shared by both worker classes."""

    connection: Redis
    name: str
    _stop_requested: bool
    recycle_requested: bool = False
    signaled: bool = False
    # RQ 3 counts jobs only in Redis, not on the worker object, so count here.
    jobs_done: int = 0
    max_memory_mb: float = 0.0
    _liveness: _Liveness | None = None

    def register_birth(self) -> None:
        super().register_birth()  # type: ignore[misc]
        self._liveness = _Liveness(self.connection, self.name)
        self._liveness.start()
        self._outbox().put("worker.online", {"name": self.name, "pid": os.getpid()})

    def register_death(self) -> None:
        if self._liveness is not None:
            self._liveness.close()
        super().register_death()  # type: ignore[misc]
        self._outbox().put("worker.offline", {"name": self.name, "pid": os.getpid()})
        self._outbox().close()  # everything the worker announced is out before it exits

    # Job events come from the worker, so every job reports them, whoever enqueued it.
    _events: events.Outbox | None = None

    def _outbox(self) -> events.Outbox:
        if self._events is None:
            self._events = events.Outbox(self.connection)
        return self._events

    def prepare_job_execution(self, job: Job, *args: Any, **kwargs: Any) -> None:
        super().prepare_job_execution(job, *args, **kwargs)  # type: ignore[misc]
        if not _quiet(job):
            self._outbox().put("job.started", events.job_data(job, worker=self.name))

    def handle_job_success(self, job: Job, queue: Queue, *args: Any, **kwargs: Any) -> None:
        super().handle_job_success(job, queue, *args, **kwargs)  # type: ignore[misc]
        if not _quiet(job):
            self._outbox().put("job.finished", events.job_data(job, result=_preview(job._result)))

    def handle_job_failure(self, job: Job, queue: Queue, *args: Any, **kwargs: Any) -> None:
        super().handle_job_failure(job, queue, *args, **kwargs)  # type: ignore[misc]
        # Failures of quiet jobs are still news.
        status = job.get_status(refresh=True)
        exc_string = kwargs.get("exc_string") or (args[1] if len(args) > 1 else "") or ""
        lines = [line for line in str(exc_string).strip().splitlines() if line.strip()]
        error = lines[-1][:300] if lines else status.value
        type_ = _FAILURE_EVENTS.get(status, "job.failed")
        self._outbox().put(type_, events.job_data(job, status=status.value, error=error))

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        self.signaled = True
        super().request_stop(signum, frame)  # type: ignore[misc]

    def _check_memory(self) -> None:
        if self.max_memory_mb and processes.rss_mb() > self.max_memory_mb:
            log.info("worker %s: RSS above %.0f MB; stopping to be replaced", self.name, self.max_memory_mb)
            self.recycle_requested = True
            self._stop_requested = True


_FAILURE_EVENTS = {
    JobStatus.STOPPED: "job.canceled",
    JobStatus.QUEUED: "job.retrying",
    JobStatus.SCHEDULED: "job.retrying",
}


def _quiet(job: Job) -> bool:
    """Return True for alarmq's own plumbing (every-second jobs) that stays out of the event stream."""
    if job.meta.get("quiet"):
        return True
    name = job.meta.get("task")
    try:
        return isinstance(name, str) and registry.get(name).quiet
    except Invalid:
        return False


def _preview(value: Any) -> Any:
    """Return a job result small enough for an event: itself, or a cut JSON text of it."""
    text = json.dumps(value, default=str)
    return value if len(text) <= 500 else text[:497] + "..."


class AlarmqSimpleWorker(_AlarmqMixin, SimpleWorker):
    """Run each job in this process; stop to be replaced above a memory cap."""

    _current_job_id: str | None = None

    def execute_job(self, job: Job, queue: Queue) -> None:
        self._current_job_id = job.id
        try:
            super().execute_job(job, queue)
        finally:
            self._current_job_id = None
            self.jobs_done += 1
        self._check_memory()

    def kill_horse(self, sig: signal.Signals = signal.SIGKILL) -> None:
        # There is no horse: the job runs in the main thread. A stop-job command
        # arrives on RQ's pub/sub thread, so interrupt the main thread with a
        # signal whose handler raises JobStopped; RQ then marks the job STOPPED.
        if threading.current_thread() is threading.main_thread() or not hasattr(signal, "pthread_kill"):
            return
        main = threading.main_thread().ident
        if main is not None:
            signal.pthread_kill(main, signal.SIGUSR1)

    def _install_signal_handlers(self) -> None:
        super()._install_signal_handlers()  # type: ignore[no-untyped-call]
        if hasattr(signal, "SIGUSR1"):
            signal.signal(signal.SIGUSR1, self._on_stop_job)

    def _on_stop_job(self, signum: int, frame: FrameType | None) -> None:
        if self._stopped_job_id is not None and self._stopped_job_id == getattr(self, "_current_job_id", None):
            raise JobStopped(f"job {self._stopped_job_id} was canceled by an operator")


class AlarmqForkWorker(_AlarmqMixin, Worker):
    """Fork a child for each job, for isolation."""

    def execute_job(self, job: Job, queue: Queue) -> None:
        super().execute_job(job, queue)
        self.jobs_done += 1


def build(conn: Redis, settings: Settings, queues: list[str]) -> SimpleWorker | Worker:
    """Return a worker of the configured class for `queues`."""
    cls: type[SimpleWorker] | type[Worker]
    cls = AlarmqSimpleWorker if settings.effective_worker_class == "simple" else AlarmqForkWorker
    worker = cls(
        [jobs.queue(conn, q) for q in queues],
        name=worker_name(),
        connection=conn,
        serializer=jobs.SERIALIZER,
        default_result_ttl=settings.result_ttl,
        # Wake at least every 30 s, so registry maintenance runs often.
        worker_ttl=45,
        maintenance_interval=30,
    )
    worker.max_memory_mb = settings.worker_max_memory_mb
    return worker


def run(conn: Redis, settings: Settings, queues: list[str], *, burst: bool = False) -> int:
    """Work on `queues` in this process; return 0, or RECYCLE_EXIT if it should be replaced."""
    worker = build(conn, settings, queues)
    max_jobs: Any = settings.worker_max_jobs if settings.effective_worker_class == "simple" else None
    worker.work(burst=burst, max_jobs=max_jobs, logging_level="WARNING")
    done: int = getattr(worker, "jobs_done", 0)
    recycled = getattr(worker, "recycle_requested", False) or (max_jobs is not None and done >= max_jobs)
    return RECYCLE_EXIT if recycled and not getattr(worker, "signaled", False) else 0
