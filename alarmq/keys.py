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

WORKER_QUEUES = (SCHEDULED_QUEUE, DEFAULT_QUEUE)
"""The queues a worker listens on, in priority order."""


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
    return f"{PREFIX}:scheduler:{scheduler_id}"


def scheduler_presence_pattern() -> str:
    """Return the pattern matching every scheduler presence key."""
    return f"{PREFIX}:scheduler:*"


def events_channel() -> str:
    """Return the pub/sub channel every event is published on."""
    return f"{PREFIX}:events"


def events_stream() -> str:
    """Return the capped stream that keeps recent events for replay."""
    return f"{PREFIX}:events:stream"
