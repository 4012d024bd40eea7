"""Run a scheduler process: lead (produce every schedule's runs) or stand by.

Only `alarmq scheduler` (or `alarmq up`, which starts one) runs this loop; web
processes never schedule. Any number may run: they share one Redis lease, the
holder produces the runs and the others take over within about two seconds of
its death. The leader sleeps until the next slot is due (or a schedule
changes), so runs start on time instead of up to a poll interval late.
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

from alarmq import connection, events, jobs, keys, reaper, registry, schedules
from alarmq.connection import Redis
from alarmq.producer import Producer
from alarmq.settings import Settings

log = logging.getLogger(__name__)

TICK = 1.0
PRESENCE_TTL = 5
LEASE_MS = 2000
"""A leader that stops renewing for this long is replaced: failover takes at most this plus STANDBY_POLL."""
RENEW_EVERY = 0.4
STANDBY_POLL = 0.25
FULL_RECONCILE_EVERY = 30.0
REAP_EVERY = 5.0
MAX_BACKOFF = 30.0


def silence_rq_scheduler_warnings() -> None:
    """Hide rq-scheduler's utcnow DeprecationWarning and crontab FutureWarning."""
    # rq-scheduler 0.14 calls datetime.utcnow() and an old crontab API; both
    # warn on every tick and are not actionable for alarmq's users.
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"rq_scheduler(\..*)?")
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"rq_scheduler(\..*)?")
    warnings.filterwarnings("ignore", message=r".*crontab.*", category=FutureWarning)


class Lease:
    """The leader lease: one scheduler holds it, renews it every tick, and loses it by silence."""

    _HOLD = """
    if redis.call('GET', KEYS[1]) == ARGV[1] then
        redis.call('PEXPIRE', KEYS[1], ARGV[2])
        return 1
    end
    if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
        return 1
    end
    return 0
    """

    def __init__(self, conn: Redis, owner: str, ttl_ms: int = LEASE_MS) -> None:
        self.conn = conn
        self.owner = owner
        self.ttl_ms = ttl_ms
        self._hold = conn.register_script(self._HOLD)

    def hold(self) -> bool:
        """Take or renew the lease; return True if this process is the leader."""
        return bool(self._hold(keys=[keys.scheduler_leader()], args=[self.owner, self.ttl_ms]))

    def release(self) -> None:
        """Give the lease up at once, so a standby need not wait for it to expire."""
        if self.conn.get(keys.scheduler_leader()) == self.owner.encode():
            self.conn.delete(keys.scheduler_leader())


class SchedulerProcess:
    """One scheduler process: leads (produces runs) or stands by, until a signal stops it."""

    def __init__(self, settings: Settings, conn: Redis, tick: float = TICK) -> None:
        silence_rq_scheduler_warnings()
        self.settings = settings
        self.conn = conn
        self.tick = tick
        self.id = f"{socket.gethostname()[:30]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.since = time.time()
        self.stop = threading.Event()
        self.wake = threading.Event()
        self.queues = sorted(jobs.known_queues())
        self.lease = Lease(conn, self.id)
        self.producer = Producer(conn, settings)
        # RQ's lock TTL is interval + 60 and must be a whole number of seconds.
        self.retries = RQScheduler(self.queues, connection=conn, serializer=jobs.SERIALIZER, interval=max(1, int(tick)))
        # RQScheduler builds a pool of its own so it can run in a forked child;
        # here it runs in this process, which keeps to one pool.
        self.retries._connection = conn  # type: ignore[assignment]
        self.leader = False
        self.leader_since: float | None = None
        self.last_tick: float | None = None
        self.tick_ms: float | None = None

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stop.set()
        self.wake.set()

    def run(self, burst: bool = False) -> None:
        """Lead or stand by until stopped (or for one tick, in burst mode)."""
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, self._on_signal)
            signal.signal(signal.SIGTERM, self._on_signal)
        report = schedules.sync_declared(self.conn, time.time())
        if any(report.values()):
            log.info("scheduler %s: synced declared schedules %s", self.id, report)
        threading.Thread(target=self._listen, name="alarmq-schedules-listener", daemon=True).start()
        backoff = 1.0
        next_reap = next_full = 0.0
        log.info("scheduler %s: started", self.id)
        while not self.stop.is_set():
            timeout = self.tick
            try:
                now = time.time()
                timeout = self.step(now, full=now >= next_full, reap=now >= next_reap)
                if now >= next_full:
                    next_full = now + FULL_RECONCILE_EVERY
                if now >= next_reap:
                    next_reap = now + REAP_EVERY
                backoff = 1.0
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
                log.warning("scheduler %s: redis unavailable (%s); retrying in %.0fs", self.id, exc, backoff)
                self.leader = False
                timeout, backoff = backoff, min(backoff * 2, MAX_BACKOFF)
            except Exception:
                log.exception("scheduler %s: tick failed", self.id)
            if burst:
                self.stop.set()  # ends the listener thread too
                break
            self.wake.wait(max(0.0, timeout))
            self.wake.clear()
        self._leave()

    def step(self, now: float, full: bool = False, reap: bool = False) -> float:
        """Run one tick at `now`; return how long to sleep before the next."""
        started = time.perf_counter()
        was_leader, self.leader = self.leader, self.lease.hold()
        if self.leader and not was_leader:
            self.leader_since = now
            log.info("scheduler %s: now the leader", self.id)
            events.publish(self.conn, "scheduler.leader", {"id": self.id, "host": socket.gethostname(),
                                                           "pid": os.getpid()})  # fmt: skip
            full = True
        if self.leader:
            if full:
                self.producer.reconcile_all(now)
            self.producer.reconcile_dirty(now)
            self.producer.process_due(now, self.lease.hold)
            if self.retries.acquire_locks():  # type: ignore[no-untyped-call]
                self.retries.enqueue_scheduled_jobs()  # type: ignore[no-untyped-call]
            if reap:
                reaper.reap(self.conn, self.queues)
        self.last_tick = time.time()
        self.tick_ms = (time.perf_counter() - started) * 1000
        self._announce()
        if not self.leader:
            return STANDBY_POLL
        due = self.producer.next_due()
        until_due = due - time.time() if due is not None else self.tick
        # Renew the lease well before it lapses, and wake exactly when a slot is due.
        return max(0.0, min(until_due, RENEW_EVERY))

    def _listen(self) -> None:
        """Wake the loop early whenever a schedule changes (so edits apply within a tick)."""
        backoff = 1.0
        while not self.stop.is_set():
            try:
                pubsub = self.conn.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
                pubsub.subscribe(keys.schedules_changed_channel())
                backoff = 1.0
                while not self.stop.is_set():
                    if pubsub.get_message(timeout=1.0):
                        self.wake.set()
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError):
                self.stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)

    def _announce(self) -> None:
        info: dict[str, str | float | int] = {
            "id": self.id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "since": self.since,
            "role": "leader" if self.leader else "standby",
        }
        if self.leader_since is not None and self.leader:
            info["leader_since"] = self.leader_since
        if self.last_tick is not None:
            info["last_tick"] = self.last_tick
            info["tick_ms"] = round(self.tick_ms or 0.0, 3)
        lag = self.producer.lag_ms()
        if lag is not None:
            info["lag_ms"] = lag
        with self.conn.pipeline(transaction=True) as pipe:
            pipe.delete(keys.scheduler_presence(self.id))
            pipe.hset(keys.scheduler_presence(self.id), mapping=cast(Any, info))
            pipe.expire(keys.scheduler_presence(self.id), PRESENCE_TTL)
            pipe.execute()

    def _leave(self) -> None:
        try:
            if self.leader:
                self.retries.release_locks()  # type: ignore[no-untyped-call]
            self.lease.release()
            self.conn.delete(keys.scheduler_presence(self.id))
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            pass  # the lease and presence keys expire by themselves
        log.info("scheduler %s: stopped", self.id)


def schedulers(conn: Redis) -> list[dict[str, Any]]:
    """Return the live scheduler processes as they announced themselves."""
    found = []
    for key in conn.scan_iter(match=keys.scheduler_presence_pattern(), count=100):
        raw: dict[bytes, bytes] = cast(Any, conn.hgetall(key))
        if raw:
            found.append({k.decode(): _number_or_text(v.decode()) for k, v in raw.items()})
    return sorted(found, key=lambda s: s.get("since", 0))


def status(conn: Redis) -> dict[str, Any]:
    """Return the leader, the standbys and the leader's last tick, tick duration and lag."""
    found = schedulers(conn)
    holder = conn.get(keys.scheduler_leader())
    leader_id = holder.decode() if isinstance(holder, bytes) else None
    leader = next((s for s in found if s["id"] == leader_id), None)
    return {
        "leader": leader,
        "standbys": [s for s in found if s["id"] != leader_id],
        "last_tick": leader.get("last_tick") if leader else None,
        "tick_ms": leader.get("tick_ms") if leader else None,
        "lag_ms": leader.get("lag_ms") if leader else None,
    }


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
