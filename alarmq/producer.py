"""Produce each schedule's runs through rq-scheduler, one slot at a time (leader only).

Every enabled schedule has exactly one pending rq-scheduler entry: its next
slot, under the stable job id `sched-<id>-<slot>`. When it comes due the leader
decides its outcome (run, or skip because paused, disabled or still running,
or missed because no scheduler was alive), records it in the ledger and
registers the next slot. rq-scheduler's own periodic machinery (interval,
repeat, cron strings in the host's zone, result TTLs that make entries vanish,
#42) is not used: alarmq computes every slot itself, in the schedule's zone.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any, cast

from rq.job import Job, JobStatus

from alarmq import events, jobs, keys, ledger, runs, schedules, triggers
from alarmq.connection import Redis
from alarmq.errors import NotFound
from alarmq.settings import Settings

log = logging.getLogger(__name__)

GRACE = 10
"""Seconds a slot may be late (say, during a failover) and still run; later ones are missed."""

CLAIM_TTL = 7 * 86400
FULL_RECONCILE_EVERY = 30.0
_BUSY = (JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED)


class Producer:
    """The leader's view of rq-scheduler: register slots, process due ones, reconcile changes."""

    def __init__(self, conn: Redis, settings: Settings) -> None:
        from rq_scheduler import Scheduler  # imported late: the caller silences its warnings first

        self.conn = conn
        self.settings = settings
        self.periodic = Scheduler(queue_name=keys.SCHEDULED_QUEUE, interval=1, connection=conn, job_class=jobs.JSONJob)
        self.lags_ms: deque[float] = deque(maxlen=100)

    # -- slots in rq-scheduler -------------------------------------------------------

    def register(self, schedule: dict[str, Any], slot: int) -> None:
        """Put `slot` into rq-scheduler under its stable job id (idempotent)."""
        sid = schedule["id"]
        self.periodic.enqueue_at(
            triggers.to_datetime(slot),
            runs.run_slot,
            sid,
            str(slot),
            job_id=keys.slot_job_id(sid, str(slot)),
            queue_name=schedule["queue"],
            timeout=schedule["timeout"] or self.settings.job_timeout,
            job_result_ttl=self.settings.result_ttl,
            job_description=f"{schedule['task']} for schedule {sid} at {triggers.to_datetime(slot).isoformat()}",
            meta={"task": schedule["task"], "source": "scheduler", "schedule": sid, "slot": slot},
        )
        self.conn.hset(keys.schedule(sid), "next_slot", slot)

    def pending(self, sid: str | None = None) -> list[tuple[str, int]]:
        """Return (job id, slot) of rq-scheduler entries produced for `sid` (or every schedule)."""
        prefix = f"sched-{sid}-" if sid else "sched-"
        raw = cast(
            list[tuple[bytes, float]], self.conn.zrange(self.periodic.scheduled_jobs_key, 0, -1, withscores=True)
        )
        return [(m.decode(), int(score)) for m, score in raw if m.decode().startswith(prefix)]

    def tracked(self, schedule: dict[str, Any]) -> list[tuple[str, int]]:
        """Return the schedule's pending entry as recorded in its hash, if rq-scheduler still holds it."""
        slot = schedule["next_slot"]
        if slot is None:
            return []
        job_id = keys.slot_job_id(schedule["id"], str(int(slot)))
        # One ZSCORE instead of reading the whole set: the producer's cost per
        # slot must not grow with the number of schedules (measured: 3 ms at 1,000).
        score = self.conn.zscore(self.periodic.scheduled_jobs_key, job_id)
        return [] if score is None else [(job_id, int(score))]

    def drop(self, job_id: str) -> None:
        """Remove a pending entry and its job hash."""
        self.conn.zrem(self.periodic.scheduled_jobs_key, job_id)
        self.conn.delete(f"rq:job:{job_id}")

    def next_due(self) -> float | None:
        """Return when the earliest pending entry is due, if any."""
        first = cast(
            list[tuple[bytes, float]], self.conn.zrange(self.periodic.scheduled_jobs_key, 0, 0, withscores=True)
        )
        return first[0][1] if first else None

    # -- reconciling -----------------------------------------------------------------

    def reconcile(self, sid: str, now: float, entries: list[tuple[str, int]] | None = None) -> None:
        """Make rq-scheduler hold exactly the slot the schedule's current spec expects.

        `entries` are the schedule's pending entries when the caller has read
        them all at once (reconcile_all); otherwise its tracked entry is used.
        """
        try:
            schedule = schedules.load(self.conn, sid)
        except NotFound:
            for job_id, _ in self.pending(sid) if entries is None else entries:
                self.drop(job_id)
            return
        if schedule["fire_once"]:
            self.conn.hset(keys.schedule(sid), "fire_once", "0")
            self._enqueue_now(schedule, now, reason="misfire policy once: one run for the slots skipped while off")
        expected = triggers.next_fire(schedules.trigger(schedule), max(now, schedule["last_slot"] or 0),
                                      schedule["anchor"])  # fmt: skip
        keep = False
        for job_id, slot in self.tracked(schedule) if entries is None else entries:
            if (slot == expected or slot <= now) and not keep:
                keep = True  # already right, or due and about to be processed
            else:
                self.drop(job_id)
        if not keep:
            self.register(schedule, expected)

    def reconcile_dirty(self, now: float, batch: int = 200) -> int:
        """Reconcile the schedules changed since the last call; return how many."""
        changed = cast(list[bytes], self.conn.spop(keys.schedules_dirty(), batch) or [])
        for sid in changed:
            self.reconcile(sid.decode(), now)
        return len(changed)

    def reconcile_all(self, now: float) -> None:
        """Reconcile every schedule, and drop entries of schedules that no longer exist."""
        known = {s["id"] for s in schedules.list_all(self.conn)}
        by_schedule: dict[str, list[tuple[str, int]]] = {sid: [] for sid in known}
        for job_id, slot in self.pending():  # one read of the whole set, not one per schedule
            sid = _schedule_of(job_id, known)
            if sid is None:
                self.drop(job_id)
            else:
                by_schedule[sid].append((job_id, slot))
        for sid, entries in by_schedule.items():
            self.reconcile(sid, now, entries)

    # -- due slots -----------------------------------------------------------------------

    def process_due(self, now: float, still_leading: Callable[[], bool] | None = None) -> int:
        """Decide every due slot: run it, skip it or mark it missed; register the next; return how many.

        `still_leading` renews the leader lease every few slots, so a long tick
        (a thousand slots due at once) does not let a standby take over mid-way.
        """
        due = cast(list[tuple[bytes, float]], self.conn.zrangebyscore(
            self.periodic.scheduled_jobs_key, 0, int(now), withscores=True))  # fmt: skip
        for n, (member, _) in enumerate(due):
            if still_leading is not None and n and n % 50 == 0 and not still_leading():
                return n  # the lease went to another scheduler: it carries on from here
            job_id = member.decode()
            try:
                job = Job.fetch(job_id, connection=self.conn, serializer=jobs.SERIALIZER)
            except Exception:  # NoSuchJobError, or a job another client wrote with pickle
                job = None
            if job is None or "schedule" not in job.meta:
                if job is not None:
                    self.periodic.enqueue_job(job)  # a plain rq-scheduler job: move it as rq-scheduler would
                else:
                    self.conn.zrem(self.periodic.scheduled_jobs_key, job_id)
                continue
            self._decide(job, int(job.meta["slot"]), now)
        return len(due)

    def _decide(self, job: Job, slot: int, now: float) -> None:
        sid = job.meta["schedule"]
        try:
            schedule = schedules.load(self.conn, sid)
        except NotFound:
            self.drop(job.id)
            return
        trigger = schedules.trigger(schedule)
        key = str(slot)
        if now - slot > GRACE:
            # No scheduler was alive in time. Record every slot that is now too
            # late; misfire=once runs this job (the first of them) late, once.
            late = [slot, *triggers.fires_between(trigger, slot, now - GRACE, schedule["anchor"], limit=ledger.CAP)]
            run_one = schedule["misfire"] == "once" and schedule["enabled"]
            for m in late[1:] if run_one else late:
                ledger.record(self.conn, sid, str(m), m, "missed", reason="no scheduler was alive at this time")
            if run_one:
                self._enqueue(job, schedule, slot, now, reason=f"misfire policy once: {len(late)} slot(s) were late")
            else:
                self.drop(job.id)
            self._register_next(schedule, max(late[-1], now - GRACE))
            return
        reason = self._skip_reason(schedule, slot)
        if reason:
            ledger.record(self.conn, sid, key, slot, "skipped", not schedules.quiet(schedule), reason=reason)
            self.drop(job.id)
        else:
            self._enqueue(job, schedule, slot, now)
        self._register_next(schedule, slot)

    def _skip_reason(self, schedule: dict[str, Any], slot: int) -> str | None:
        if not schedule["enabled"]:
            return "disabled"
        if schedule["paused_until"] and slot < schedule["paused_until"]:
            return "paused"
        if schedule["overlap"] == "skip" and schedule["last_job"] and _busy(self.conn, schedule["last_job"]):
            return f"overlap: the run {schedule['last_job']} is still going"
        return None

    def _enqueue(self, job: Job, schedule: dict[str, Any], slot: int, now: float, reason: str | None = None) -> None:
        sid = schedule["id"]
        # rq-scheduler's lock can expire mid-tick (#312): the slot's claim makes
        # a second enqueue of the same slot impossible, whoever attempts it.
        if not self.conn.set(keys.slot_enqueued(sid, str(slot)), job.id, nx=True, ex=CLAIM_TTL):
            self.conn.zrem(self.periodic.scheduled_jobs_key, job.id)
            return
        self.periodic.enqueue_job(job)
        loud = not schedules.quiet(schedule)
        if loud:  # alarmq's every-second plumbing stays out of the job listing and the stream
            jobs.index(self.conn, job.id)
            events.publish(self.conn, "job.queued", events.job_data(job, source="scheduler"))
        extra = {"reason": reason} if reason else {}
        ledger.record(self.conn, sid, str(slot), slot, "enqueued", loud, job_id=job.id, **extra)
        self.conn.hset(keys.schedule(sid), mapping={"last_slot": slot, "last_job": job.id})
        self.lags_ms.append(max(0.0, (time.time() - slot) * 1000))  # at the enqueue, not the tick's start

    def _enqueue_now(self, schedule: dict[str, Any], now: float, reason: str) -> None:
        slot = int(now)
        job = self.periodic.enqueue_at(
            triggers.to_datetime(slot), runs.run_slot, schedule["id"], str(slot),
            job_id=keys.slot_job_id(schedule["id"], str(slot)), queue_name=schedule["queue"],
            timeout=schedule["timeout"] or self.settings.job_timeout, job_result_ttl=self.settings.result_ttl,
            meta={"task": schedule["task"], "source": "scheduler", "schedule": schedule["id"], "slot": slot},
        )  # fmt: skip
        self._enqueue(job, schedule, slot, now, reason=reason)

    def _register_next(self, schedule: dict[str, Any], after: float) -> None:
        fresh = schedules.load(self.conn, schedule["id"])
        nxt = triggers.next_fire(schedules.trigger(fresh), max(after, fresh["last_slot"] or 0), fresh["anchor"])
        job_id = keys.slot_job_id(fresh["id"], str(nxt))
        if self.conn.zscore(self.periodic.scheduled_jobs_key, job_id) is None:
            self.register(fresh, nxt)

    def lag_ms(self) -> float | None:
        """Return the median lag of recent slots, from fire time to enqueue."""
        if not self.lags_ms:
            return None
        ordered = sorted(self.lags_ms)
        return round(ordered[len(ordered) // 2], 3)


def _busy(conn: Redis, job_id: str) -> bool:
    status = conn.hget(f"rq:job:{job_id}", "status")
    return status is not None and cast(bytes, status).decode() in _BUSY


def _schedule_of(job_id: str, known: set[str]) -> str | None:
    rest = job_id.removeprefix("sched-")
    sid = rest.rsplit("-", 1)[0]
    return sid if sid in known else None
