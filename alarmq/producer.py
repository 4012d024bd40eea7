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
LOOK_AGAIN = 0.25
"""How often a long pass of bookkeeping looks for slots that came due meanwhile."""
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
        work = deque(self._due_jobs(now))
        if not work:
            return 0
        seen = {job.id for job in work}
        # First the time-critical part, for every slot that plainly runs: claim
        # and enqueue them all in two round trips. The bookkeeping (ledger,
        # events, next slot) follows slot by slot (measured: ~1.3 ms a slot).
        enqueued = self._enqueue_runnable(list(work), now)
        done = 0
        next_look = time.time() + LOOK_AGAIN
        while work:
            if still_leading is not None and done and done % 50 == 0 and not still_leading():
                return done  # the lease went to another scheduler: it carries on from here
            if time.time() >= next_look:
                # Slots that came due during a long bookkeeping pass go out first.
                next_look = time.time() + LOOK_AGAIN
                fresh = [job for job in self._due_jobs(time.time()) if job.id not in seen]
                seen.update(job.id for job in fresh)
                enqueued.update(self._enqueue_runnable(fresh, time.time()))
                work.extend(fresh)
            job = work.popleft()
            done += 1
            slot = int(job.meta["slot"])
            if job.id in enqueued:
                schedule = schedules.load(self.conn, job.meta["schedule"])
                self._record_enqueued(job, schedule, slot, enqueued[job.id])
                self._register_next(schedule, slot)
            else:
                self._decide(job, slot, now)
        return done

    def _due_jobs(self, now: float) -> list[Job]:
        """Return the schedule jobs due at `now`; move plain rq-scheduler jobs and drop vanished ones."""
        due = cast(list[tuple[bytes, float]], self.conn.zrangebyscore(
            self.periodic.scheduled_jobs_key, 0, int(now), withscores=True))  # fmt: skip
        if not due:
            return []
        ids = [m.decode() for m, _ in due]
        try:
            fetched = Job.fetch_many(ids, connection=self.conn, serializer=jobs.SERIALIZER)
        except Exception:  # a job another client wrote with pickle: fall back to one by one
            fetched = [self._fetch(job_id) for job_id in ids]
        ours: list[Job] = []
        for job_id, job in zip(ids, fetched, strict=True):
            if job is None:
                self.conn.zrem(self.periodic.scheduled_jobs_key, job_id)
            elif "schedule" not in job.meta:
                self.periodic.enqueue_job(job)  # a plain rq-scheduler job: move it as rq-scheduler would
            else:
                ours.append(job)
        return ours

    def _fetch(self, job_id: str) -> Job | None:
        try:
            return Job.fetch(job_id, connection=self.conn, serializer=jobs.SERIALIZER)
        except Exception:  # NoSuchJobError, or a job another client wrote with pickle
            return None

    def _enqueue_runnable(self, due: list[Job], now: float) -> dict[str, float]:
        """Claim and enqueue, in one go, the due slots that plainly run; return their ids and enqueue times."""
        sids = sorted({job.meta["schedule"] for job in due})
        with self.conn.pipeline(transaction=False) as pipe:
            for sid in sids:
                pipe.hgetall(keys.schedule(sid))
            raws = pipe.execute()
        loaded = {sid: schedules.decode(sid, raw) for sid, raw in zip(sids, raws, strict=True) if raw}
        last_jobs = [s["last_job"] for s in loaded.values() if s["last_job"]]
        with self.conn.pipeline(transaction=False) as pipe:
            for job_id in last_jobs:
                pipe.hget(f"rq:job:{job_id}", "status")
            statuses = dict(zip(last_jobs, pipe.execute(), strict=True))
        runnable: list[Job] = []
        taken: set[str] = set()
        for job in sorted(due, key=lambda j: int(j.meta["slot"])):
            schedule = loaded.get(job.meta["schedule"])
            slot = int(job.meta["slot"])
            if schedule is None or schedule["id"] in taken or now - slot > GRACE:
                continue  # gone, a later slot of one already taken, or late: the careful path decides
            busy = statuses.get(schedule["last_job"])
            if self._skip_reason(schedule, slot, busy=busy is not None and busy.decode() in _BUSY):
                continue
            runnable.append(job)
            taken.add(schedule["id"])  # one run per schedule per pass; the overlap rule sees it next
        if not runnable:
            return {}
        with self.conn.pipeline(transaction=False) as pipe:
            for job in runnable:
                pipe.set(keys.slot_enqueued(job.meta["schedule"], str(job.meta["slot"])), job.id, nx=True, ex=CLAIM_TTL)
            claims = pipe.execute()
        with self.conn.pipeline(transaction=True) as pipe:
            claimed = []
            for job, won in zip(runnable, claims, strict=True):
                pipe.zrem(self.periodic.scheduled_jobs_key, job.id)
                if won:  # #312: whoever else enqueues this slot finds it claimed
                    # The step RQ's own scheduler uses to move due jobs in a
                    # pipeline; enqueue_job() would WATCH dependencies per job.
                    jobs.queue(self.conn, job.origin)._enqueue_job(job, pipeline=pipe)
                    claimed.append(job.id)
            pipe.execute()
        at = time.time()
        return dict.fromkeys(claimed, at)

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

    def _skip_reason(self, schedule: dict[str, Any], slot: int, busy: bool | None = None) -> str | None:
        if not schedule["enabled"]:
            return "disabled"
        if schedule["paused_until"] and slot < schedule["paused_until"]:
            return "paused"
        running = schedule["last_job"] and (busy if busy is not None else _busy(self.conn, schedule["last_job"]))
        if schedule["overlap"] == "skip" and running:
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
        self._record_enqueued(job, schedule, slot, time.time(), reason)

    def _record_enqueued(
        self, job: Job, schedule: dict[str, Any], slot: int, at: float, reason: str | None = None
    ) -> None:
        """Write the bookkeeping of an enqueued slot: listing, event, ledger, last run, lag."""
        sid = schedule["id"]
        loud = not schedules.quiet(schedule)
        if loud:  # alarmq's every-second plumbing stays out of the job listing and the stream
            jobs.index(self.conn, job.id)
            events.publish(self.conn, "job.queued", events.job_data(job, source="scheduler"))
        extra = {"reason": reason} if reason else {}
        ledger.record(self.conn, sid, str(slot), slot, "enqueued", loud, job_id=job.id, **extra)
        self.conn.hset(keys.schedule(sid), mapping={"last_slot": slot, "last_job": job.id})
        self.lags_ms.append(max(0.0, (at - slot) * 1000))  # at the enqueue, not the tick's start

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
