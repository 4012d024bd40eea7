"""Report the health of the whole stack as Redis sees it."""

from __future__ import annotations

from typing import Any

import redis
from rq import Worker
from rq.worker import BaseWorker

from alarmq import jobs, scheduler
from alarmq.connection import Redis

_REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)


def health(conn: Redis, queues: list[str]) -> dict[str, Any]:
    """Return Redis, worker, scheduler and queue facts; `redis.ok` is False when Redis is down."""
    try:
        info = conn.info()
    except _REDIS_DOWN as exc:
        return {
            "status": "down",
            "redis": {"ok": False, "error": str(exc)},
            "workers": [],
            "scheduler": {"alive": False, "processes": []},
            "queues": {},
        }
    workers = [_worker(w) for w in Worker.all(connection=conn)]
    schedulers = scheduler.schedulers(conn)
    depths = {name: jobs.queue(conn, name).count for name in queues}
    ok = bool(workers) and bool(schedulers)
    return {
        "status": "ok" if ok else "degraded",
        "redis": {
            "ok": True,
            "version": info.get("redis_version"),
            "used_memory_mb": round(info.get("used_memory", 0) / 2**20, 2),
            "uptime_s": info.get("uptime_in_seconds"),
        },
        "workers": workers,
        "scheduler": {"alive": bool(schedulers), "processes": schedulers},
        "queues": depths,
    }


def _worker(w: BaseWorker) -> dict[str, Any]:
    return {
        "name": w.name,
        "state": str(w.get_state()),
        "queues": w.queue_names(),
        "pid": w.pid,
        "host": w.hostname,
        "current_job": w.get_current_job_id(),
        "successful_jobs": w.successful_job_count,
        "failed_jobs": w.failed_job_count,
    }
