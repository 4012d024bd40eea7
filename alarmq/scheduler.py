"""Run the scheduler process: rq-scheduler's periodic jobs plus RQ's delayed retries.

Only `alarmq scheduler` (or `alarmq up`, which starts it) runs this loop; the
web process never schedules. Each tick it announces itself, moves due
rq-scheduler entries and due delayed retries onto their queues, and reaps jobs
of dead workers.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
import warnings
from types import FrameType
from typing import Any, cast

import redis
from rq.scheduler import RQScheduler

from alarmq import connection, jobs, keys, reaper, registry
from alarmq.connection import Redis
from alarmq.settings import Settings

log = logging.getLogger(__name__)

TICK = 1.0
PRESENCE_TTL = 5
REAP_EVERY = 5.0
MAX_BACKOFF = 30.0


def silence_rq_scheduler_warnings() -> None:
    """Hide rq-scheduler's utcnow DeprecationWarning and crontab FutureWarning."""
    # rq-scheduler 0.14 calls datetime.utcnow() and an old crontab API; both
    # warn on every tick and are not actionable for alarmq's users.
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"rq_scheduler(\..*)?")
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"rq_scheduler(\..*)?")
    warnings.filterwarnings("ignore", message=r".*crontab.*", category=FutureWarning)


class SchedulerProcess:
    """One scheduler process: ticks until a signal asks it to stop."""

    def __init__(self, settings: Settings, conn: Redis, tick: float = TICK) -> None:
        silence_rq_scheduler_warnings()
        from rq_scheduler import Scheduler  # imported after the warning filters

        self.settings = settings
        self.conn = conn
        self.tick = tick
        self.id = f"{socket.gethostname()[:30]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.since = time.time()
        self.stop = threading.Event()
        self.queues = sorted(jobs.known_queues())
        self.periodic = Scheduler(
            queue_name=keys.SCHEDULED_QUEUE, interval=tick, connection=conn, job_class=jobs.JSONJob
        )
        # RQ's lock TTL is interval + 60 and must be a whole number of seconds.
        self.retries = RQScheduler(self.queues, connection=conn, serializer=jobs.SERIALIZER, interval=max(1, int(tick)))
        self.last_tick: float | None = None
        self.tick_ms: float | None = None

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stop.set()

    def run(self, burst: bool = False) -> None:
        """Tick until stopped (or once, in burst mode)."""
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, self._on_signal)
            signal.signal(signal.SIGTERM, self._on_signal)
        backoff = 1.0
        next_reap = 0.0
        log.info("scheduler %s: ticking every %.1fs", self.id, self.tick)
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                self.step()
                if started >= next_reap:
                    reaper.reap(self.conn, self.queues)
                    next_reap = started + REAP_EVERY
                backoff = 1.0
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
                log.warning("scheduler %s: redis unavailable (%s); retrying in %.0fs", self.id, exc, backoff)
                self.stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            except Exception:
                log.exception("scheduler %s: tick failed", self.id)
            if burst:
                break
            self.stop.wait(max(0.0, self.tick - (time.monotonic() - started)))
        self._leave()

    def step(self) -> None:
        """Run one tick: announce, enqueue due periodic jobs and due retries."""
        started = time.perf_counter()
        self._announce()
        if self.periodic.acquire_lock():
            try:
                self.periodic.enqueue_jobs()
            finally:
                self.periodic.remove_lock()
        if self.retries.acquire_locks():  # type: ignore[no-untyped-call]
            self.retries.enqueue_scheduled_jobs()  # type: ignore[no-untyped-call]
        self.last_tick = time.time()
        self.tick_ms = (time.perf_counter() - started) * 1000

    def _announce(self) -> None:
        info: dict[str, str | float | int] = {
            "id": self.id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "since": self.since,
        }
        if self.last_tick is not None:
            info["last_tick"] = self.last_tick
            info["tick_ms"] = round(self.tick_ms or 0.0, 3)
        self.conn.hset(keys.scheduler_presence(self.id), mapping=cast(Any, info))
        self.conn.expire(keys.scheduler_presence(self.id), PRESENCE_TTL)

    def _leave(self) -> None:
        try:
            self.retries.release_locks()  # type: ignore[no-untyped-call]
            self.conn.delete(keys.scheduler_presence(self.id))
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            pass  # the presence key expires by itself
        log.info("scheduler %s: stopped", self.id)


def schedulers(conn: Redis) -> list[dict[str, Any]]:
    """Return the live scheduler processes as they announced themselves."""
    found = []
    for key in conn.scan_iter(match=keys.scheduler_presence_pattern(), count=100):
        raw: dict[bytes, bytes] = cast(Any, conn.hgetall(key))
        if raw:
            found.append({k.decode(): _number_or_text(v.decode()) for k, v in raw.items()})
    return sorted(found, key=lambda s: s.get("since", 0))


def _number_or_text(value: str) -> Any:
    try:
        return float(value) if "." in value else int(value)
    except ValueError:
        return value


def run(settings: Settings, burst: bool = False) -> None:
    """Connect and run a scheduler process until it is stopped."""
    registry.load(settings.task_modules)
    conn = connection.connect(settings)
    connection.check(conn, settings.redis_url)
    SchedulerProcess(settings, conn).run(burst=burst)
