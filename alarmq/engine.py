"""Check due alarms at scale: claim them from the due set, fan out batches, apply results.

Due times live in a sorted set. Every second the `check_alarms` schedule claims
the due alarms atomically (one Lua call moves each to its next due time, so
two claimers never take the same alarm) and enqueues them in batches on the
scheduled queue. A batch runs its checks concurrently, each with its own
timeout, so one slow target never holds up the rest, and any number of workers
on any number of machines share the batches.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, cast

from rq import get_current_job
from rq.job import Job

from alarmq import jobs, keys
from alarmq.alarms import Result
from alarmq.connection import Redis
from alarmq.errors import NotFound
from alarmq.registry import task
from alarmq.settings import Settings

if TYPE_CHECKING:
    import httpx

# Every process imports this module to register check_alarms, but only the
# workers that run checks need httpx, the checks and the alarm store (~13 MB
# PSS per process, measured): those are imported where they are used.

log = logging.getLogger(__name__)
# httpx logs every request at INFO: 10,000 lines a minute at 10,000 alarms.
logging.getLogger("httpx").setLevel(logging.WARNING)
logging.getLogger("httpcore").setLevel(logging.WARNING)

BATCH = 50
CLAIM_LIMIT = 10_000
MAX_THREADS = 32

# Claim due alarms and move each to its next due time in one step. An alarm
# that fell more than an interval behind is moved to now + interval: no burst.
_CLAIM = """
local now = tonumber(ARGV[1])
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for i = 1, #ids, 2 do
    local id, due = ids[i], tonumber(ids[i + 1])
    local interval = tonumber(redis.call('HGET', KEYS[2], id) or '60')
    local nxt = due + interval
    if nxt <= now then nxt = now + interval end
    redis.call('ZADD', KEYS[1], nxt, id)
    out[#out + 1] = id
    out[#out + 1] = ids[i + 1]
end
return out
"""


def claim_due(conn: Redis, now: float, limit: int = CLAIM_LIMIT) -> list[tuple[str, float]]:
    """Take the alarms due at `now` (and reschedule them); return (id, due time) pairs."""
    flat = cast(list[bytes], conn.register_script(_CLAIM)(keys=[keys.alarms_due(), keys.alarms_intervals()],
                                                          args=[now, limit]))  # fmt: skip
    return [(flat[i].decode(), float(flat[i + 1])) for i in range(0, len(flat), 2)]


def enqueue_batches(conn: Redis, claimed: list[tuple[str, float]]) -> list[Job]:
    """Enqueue one run_checks job per batch of claimed alarms."""
    batches = []
    q = jobs.queue(conn, keys.CHECKS_QUEUE)
    for start in range(0, len(claimed), BATCH):
        chunk = claimed[start : start + BATCH]
        args = ([a for a, _ in chunk], [d for _, d in chunk])
        meta = {"task": "run_checks", "quiet": True}
        batches.append(q.enqueue_call(run_checks, args=args, timeout=300, result_ttl=60, meta=meta))
    return batches


@task(every="1s", quiet=True, description="Claim the due alarms and fan their checks out in batches.")
def check_alarms() -> int:
    """Claim the due alarms and enqueue their checks in batches; return how many."""
    job = get_current_job()
    assert job is not None, "check_alarms runs inside an RQ worker"
    claimed = claim_due(job.connection, time.time())
    enqueue_batches(job.connection, claimed)
    return len(claimed)


def run_checks(alarm_ids: list[str], due: list[float] | None = None) -> dict[str, Any]:
    """Check a batch of alarms concurrently, apply every result, and send what must be sent."""
    job = get_current_job()
    assert job is not None, "run_checks runs inside an RQ worker"
    return check_batch(job.connection, Settings.from_env(), alarm_ids, due)


def check_batch(
    conn: Redis, settings: Settings, alarm_ids: list[str], due: list[float] | None = None
) -> dict[str, Any]:
    """Run the checks of `alarm_ids` side by side and record their results; return counts and lags."""
    from alarmq import checks, monitors

    loaded = []
    for aid in alarm_ids:
        try:
            loaded.append(monitors.load(conn, aid))
        except NotFound:
            continue  # deleted since it was claimed
    started = time.time()
    lags = [round((started - d) * 1000, 3) for d in (due or [])]

    def one(alarm: dict[str, Any]) -> Result | None:
        if not alarm["enabled"]:
            return None
        try:
            return checks.run(conn, alarm, time.time(), _client(alarm["config"].get("verify_tls", True)))
        except Exception as exc:  # one broken check must not sink the batch
            log.exception("alarm %s: check crashed", alarm["id"])
            return Result(ok=False, at=time.time(), message=f"check crashed: {type(exc).__name__}")

    results = list(_pool().map(one, loaded))
    flips = 0
    for alarm, result in zip(loaded, results, strict=True):
        if result is None:
            continue
        if apply(conn, settings, alarm["id"], result, alarm):
            flips += 1
    return {"checked": sum(r is not None for r in results), "flips": flips, "lag_ms": lags}


def apply(conn: Redis, settings: Settings, alarm_id: str, result: Result, loaded: dict[str, Any] | None = None) -> bool:
    """Record one result; notify the alarm's channels if it fired, resolved or must repeat; True if it flipped."""
    from alarmq import monitors

    try:
        alarm, flip, notify = monitors.record(conn, alarm_id, result, result.at, loaded)
    except NotFound:
        return False
    if notify and alarm["channels"]:
        from alarmq import channels

        channels.enqueue_notifications(conn, settings, alarm, notify, flip.to_dict() if flip else None)
    return flip is not None


# One HTTP client of each kind and one thread pool per worker process, made
# after the fork: a TLS client loads the CA bundle (~20 ms of CPU) when built,
# which per batch was a quarter of the workers' CPU (measured by bench/alarms.py).
_shared: dict[str, Any] = {}


def _client(verify: bool) -> httpx.Client:
    import httpx

    key = f"{os.getpid()}:client:{verify}"
    if key not in _shared:
        _shared[key] = httpx.Client(verify=verify, limits=httpx.Limits(max_connections=MAX_THREADS))
    return _shared[key]  # type: ignore[no-any-return]


def _pool() -> ThreadPoolExecutor:
    key = f"{os.getpid()}:pool"
    if key not in _shared:
        _shared[key] = ThreadPoolExecutor(max_workers=MAX_THREADS, thread_name_prefix="alarmq-check")
    return _shared[key]  # type: ignore[no-any-return]


def check_now(conn: Redis, alarm_id: str) -> Job:
    """Enqueue a check of one alarm right away."""
    from alarmq import monitors

    monitors.load(conn, alarm_id)
    return jobs.queue(conn, keys.CHECKS_QUEUE).enqueue_call(
        run_checks, args=([alarm_id],), timeout=120, result_ttl=60, meta={"task": "run_checks"}
    )


def ping(conn: Redis, settings: Settings, token: str, failed: bool, now: float) -> dict[str, Any]:
    """Record a heartbeat ping (or a reported failure) and judge the alarm at once."""
    from alarmq import checks, monitors

    alarm_id = conn.get(keys.heartbeat_token(token))
    if alarm_id is None:
        raise NotFound("no heartbeat with this ping URL")
    aid = cast(bytes, alarm_id).decode()
    conn.hset(keys.alarm(aid), "last_fail" if failed else "last_ping", now)
    alarm = monitors.load(conn, aid)
    if alarm["enabled"]:
        apply(conn, settings, aid, checks.heartbeat(alarm, now))
    return {"id": aid, "received": "fail" if failed else "ping", "at": now}


def push_metric(conn: Redis, settings: Settings, name: str, value: float, ts: float) -> list[str]:
    """Store a metric sample and judge every threshold alarm watching it; return their ids."""
    import json

    from alarmq import checks, monitors

    with conn.pipeline(transaction=True) as pipe:
        pipe.lpush(keys.metric(name), json.dumps({"value": value, "ts": ts}))
        pipe.ltrim(keys.metric(name), 0, 999)
        pipe.execute()
    watchers = sorted(m.decode() for m in cast(set[bytes], conn.smembers(keys.metric_alarms(name))))
    for aid in watchers:
        try:
            alarm = monitors.load(conn, aid)
        except NotFound:
            continue
        result = checks.threshold(conn, alarm, ts) if alarm["enabled"] else None
        if result is not None:
            apply(conn, settings, aid, result)
    return watchers
