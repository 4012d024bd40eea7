"""Build every Redis key, queue and channel name alarmq uses.

RQ owns the `rq:` namespace; alarmq's own state lives under `alarmq:`.
No other module spells a key.
"""

from __future__ import annotations

PREFIX = "alarmq"

SCHEDULED_QUEUE = "scheduled"
"""Scheduled runs and alarm checks; workers serve it first so ad-hoc backlogs never delay a slot."""

DEFAULT_QUEUE = "default"
"""Everything else."""

WORKER_QUEUES = (SCHEDULED_QUEUE, "checks", DEFAULT_QUEUE)
"""The queues a worker listens on, in priority order (CHECKS_QUEUE is "checks")."""


def jobs_index() -> str:
    """Return the sorted set of job ids by enqueue time, newest last."""
    return f"{PREFIX}:jobs"


def worker_alive(worker_name: str) -> str:
    """Return the short-lived key a worker process refreshes while it lives."""
    return f"{PREFIX}:worker:{worker_name}:alive"


def reap_claim(job_id: str) -> str:
    """Return the key a reaper sets so only one reaper handles an abandoned job."""
    return f"{PREFIX}:reap:{job_id}"


def scheduler_presence(scheduler_id: str) -> str:
    """Return the key a live scheduler process refreshes."""
    return f"{PREFIX}:schedulers:{scheduler_id}"


def scheduler_presence_pattern() -> str:
    """Return the pattern matching every scheduler presence key."""
    return f"{PREFIX}:schedulers:*"


def scheduler_leader() -> str:
    """Return the lease key naming the one scheduler that produces runs."""
    return f"{PREFIX}:scheduler-leader"


def schedules_index() -> str:
    """Return the set of every schedule id."""
    return f"{PREFIX}:schedules"


def schedule(schedule_id: str) -> str:
    """Return the hash holding a schedule's spec, declared default and state."""
    return f"{PREFIX}:schedule:{schedule_id}"


def schedule_ledger(schedule_id: str) -> str:
    """Return the hash of a schedule's slot records, by slot key."""
    return f"{PREFIX}:schedule:{schedule_id}:slots"


def schedule_ledger_order(schedule_id: str) -> str:
    """Return the sorted set ordering a schedule's slot records by fire time."""
    return f"{PREFIX}:schedule:{schedule_id}:order"


def schedules_dirty() -> str:
    """Return the set of schedules changed since the leader last reconciled them."""
    return f"{PREFIX}:schedules:dirty"


def schedules_changed_channel() -> str:
    """Return the channel that wakes the leader early when a schedule changes."""
    return f"{PREFIX}:schedules:changed"


def slot_enqueued(schedule_id: str, slot: str) -> str:
    """Return the idempotency key claimed when a slot is enqueued (at most once)."""
    return f"{PREFIX}:slot:{schedule_id}:{slot}:enqueued"


def slot_ran(schedule_id: str, slot: str) -> str:
    """Return the idempotency key claimed when a slot starts running (at most once)."""
    return f"{PREFIX}:slot:{schedule_id}:{slot}:ran"


def slot_job_id(schedule_id: str, slot: str) -> str:
    """Return the stable RQ job id of a schedule's slot (RQ allows only [A-Za-z0-9_-])."""
    return f"sched-{schedule_id}-{slot}"


def events_channel() -> str:
    """Return the pub/sub channel every event is published on."""
    return f"{PREFIX}:events"


def events_stream() -> str:
    """Return the capped stream that keeps recent events for replay."""
    return f"{PREFIX}:events:stream"


def alarms_index() -> str:
    """Return the set of every alarm id."""
    return f"{PREFIX}:alarms"


def alarm(alarm_id: str) -> str:
    """Return the hash holding an alarm's spec, state and counters."""
    return f"{PREFIX}:alarm:{alarm_id}"


def alarm_results(alarm_id: str) -> str:
    """Return the capped list of an alarm's recent results, newest first."""
    return f"{PREFIX}:alarm:{alarm_id}:results"


def alarm_flips(alarm_id: str) -> str:
    """Return the capped list of an alarm's state changes, newest first."""
    return f"{PREFIX}:alarm:{alarm_id}:flips"


def alarm_notifications(alarm_id: str) -> str:
    """Return the capped list of an alarm's notification attempts and outcomes, newest first."""
    return f"{PREFIX}:alarm:{alarm_id}:notifications"


def alarms_due() -> str:
    """Return the sorted set of alarm ids by the time their next check is due."""
    return f"{PREFIX}:alarms:due"


def alarms_intervals() -> str:
    """Return the hash of alarm id to check interval, read by the claim script."""
    return f"{PREFIX}:alarms:intervals"


def heartbeat_token(token: str) -> str:
    """Return the key mapping a heartbeat's secret ping token to its alarm."""
    return f"{PREFIX}:heartbeat:{token}"


def metric(name: str) -> str:
    """Return the capped list of a metric's recent samples, newest first."""
    return f"{PREFIX}:metric:{name}"


def metric_alarms(name: str) -> str:
    """Return the set of threshold alarms that watch a metric."""
    return f"{PREFIX}:metric:{name}:alarms"


def channels_index() -> str:
    """Return the set of every notification channel id."""
    return f"{PREFIX}:channels"


def channel(channel_id: str) -> str:
    """Return the hash holding a notification channel's kind and config."""
    return f"{PREFIX}:channel:{channel_id}"


def tokens() -> str:
    """Return the hash of named API tokens: name to JSON {role, hash, salt, id, created_at}; never the token."""
    return f"{PREFIX}:tokens"


def tokens_last_used() -> str:
    """Return the hash of token name to when it last authenticated (kept apart so a use never rewrites the record)."""
    return f"{PREFIX}:tokens:last-used"


def session(session_id: str) -> str:
    """Return the key that keeps a login session alive until it expires or logs out."""
    return f"{PREFIX}:session:{session_id}"


def audit_log() -> str:
    """Return the capped stream of audit entries: who changed what, when, before and after."""
    return f"{PREFIX}:audit"


CHECKS_QUEUE = "checks"
"""Alarm check batches: served after scheduled runs (so the every-second claim never waits
behind a backlog of batches) and before ad-hoc jobs."""


def alarm_uptime(alarm_id: str) -> str:
    """Return the hash of an alarm's hourly pass/total counters, for uptime over 30 days."""
    return f"{PREFIX}:alarm:{alarm_id}:uptime"
