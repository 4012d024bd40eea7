"""Own the event envelope: build it, publish it and read it back from the stream.

Every event is `{"id", "type", "ts", "data"}` as JSON. It is published on one
pub/sub channel for live listeners and appended to a capped stream whose entry
id is the event id, so a client that was away can replay what it missed.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import threading
import time
import weakref
from collections.abc import Sequence
from fnmatch import fnmatchcase
from typing import Any, cast

import redis
from redis.commands.core import Script

from alarmq import keys
from alarmq.connection import Redis
from alarmq.errors import Invalid

log = logging.getLogger(__name__)

STREAM_MAXLEN = 10_000
EVENT_ID_PATTERN = r"^\d{1,19}(-\d{1,19})?$"
_TYPE_PATTERN = re.compile(r"[a-z*][a-z0-9_.*]{0,63}")
"""An event id is a stream id, `<ms>-<seq>`; 19 digits always fit Redis's 64-bit parts."""

# Publishing is best effort for the caller: an event must never fail the job
# or request that caused it, so Redis errors are logged, not raised.
_PUBLISH_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)


def is_event_id(value: str) -> bool:
    """Return True if `value` can be used as an event id to replay from."""
    return re.fullmatch(EVENT_ID_PATTERN, value) is not None


def envelope(event_id: str, type_: str, data: dict[str, Any], ts: float | None = None) -> dict[str, Any]:
    """Return the one event shape every producer and consumer uses."""
    return {"id": event_id, "type": type_, "ts": time.time() if ts is None else ts, "data": data}


# XADD and PUBLISH in one atomic round trip; the stream assigns the id, which
# is spliced into the published JSON so live and replayed events are identical.
_PUBLISH_LUA = """
    local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'type', ARGV[2], 'ts', ARGV[3], 'data', ARGV[4])
    redis.call('PUBLISH', KEYS[2], '{"id": "' .. id .. '", ' .. ARGV[5])
    return id
"""
_scripts: weakref.WeakKeyDictionary[Redis, Script] = weakref.WeakKeyDictionary()


def _publish_script(conn: Redis) -> Script:
    script = _scripts.get(conn)
    if script is None:
        script = _scripts[conn] = conn.register_script(_PUBLISH_LUA)
    return script


def publish(conn: Redis, type_: str, data: dict[str, Any]) -> dict[str, Any] | None:
    """Append an event to the stream and publish it; return it, or None if Redis failed."""
    ts, args = _script_args(type_, data)
    try:
        raw_id = _publish_script(conn)(keys=[keys.events_stream(), keys.events_channel()], args=args, client=conn)
    except _PUBLISH_ERRORS as exc:
        log.warning("event %s not published: redis unavailable (%s)", type_, exc)
        return None
    event_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
    return envelope(event_id, type_, json.loads(args[3]), ts)


def _script_args(type_: str, data: dict[str, Any]) -> tuple[float, list[Any]]:
    ts = time.time()
    rest = json.dumps({"type": type_, "ts": ts, "data": data}, default=str)[1:]
    return ts, [STREAM_MAXLEN, type_, repr(ts), json.dumps(data, default=str), rest]


def publish_many(conn: Redis, items: Sequence[tuple[str, dict[str, Any]]]) -> int:
    """Publish several events in one round trip, in order; return how many went out (0 if Redis failed)."""
    if not items:
        return 0
    script = _publish_script(conn)
    try:
        with conn.pipeline(transaction=False) as pipe:
            for type_, data in items:
                _, args = _script_args(type_, data)
                script(keys=[keys.events_stream(), keys.events_channel()], args=args, client=pipe)
            pipe.execute()
    except _PUBLISH_ERRORS as exc:
        log.warning("%d events not published: redis unavailable (%s)", len(items), exc)
        return 0
    return len(items)


class Outbox:
    """Publish events from a background thread, in order, many per round trip.

    A worker's job events would otherwise cost two Redis round trips per job
    on its critical path (measured: about a fifth of the simple worker's
    throughput). In a forked child, where the thread does not exist, events
    are published at once.
    """

    def __init__(self, conn: Redis, batch: int = 200) -> None:
        self.conn = conn
        self.batch = batch
        self.pid = os.getpid()
        self.queue: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue()
        self.thread = threading.Thread(target=self._run, name="alarmq-events", daemon=True)
        self.thread.start()

    def put(self, type_: str, data: dict[str, Any]) -> None:
        """Queue one event for publishing."""
        if os.getpid() != self.pid:
            publish(self.conn, type_, data)  # a forked work horse: no thread here
            return
        self.queue.put((type_, data))

    def close(self, timeout: float = 5.0) -> None:
        """Publish what is queued and stop the thread."""
        if os.getpid() == self.pid and self.thread.is_alive():
            self.queue.put(None)
            self.thread.join(timeout)

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            items = [] if item is None else [item]
            stop = item is None
            while not stop and len(items) < self.batch:
                try:
                    more = self.queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                else:
                    items.append(more)
            publish_many(self.conn, items)
            if stop:
                return


def job_data(job: Any, **extra: Any) -> dict[str, Any]:
    """Return the data of a `job.*` event for an RQ job."""
    data = {"id": job.id, "task": job.meta.get("task"), "queue": job.origin}
    if "schedule" in job.meta:
        data["schedule"] = job.meta["schedule"]
        data["slot"] = job.meta.get("slot")
    return {**data, **extra}


def matches(type_: str, patterns: Sequence[str] | None) -> bool:
    """Return True if an event type matches any of `patterns` (like `alarm.*`), or there are none."""
    return not patterns or any(fnmatchcase(type_, p) for p in patterns)


def parse_types(value: str | None) -> tuple[str, ...]:
    """Return the patterns of a `types=alarm.*,job.failed` filter, or raise Invalid."""
    if value is None:
        return ()
    if not value:
        raise Invalid("types must name at least one event type or pattern, like 'alarm.*'; leave it out for all")
    patterns = tuple(p.strip() for p in value.split(",") if p.strip())
    for p in patterns:
        if not _TYPE_PATTERN.fullmatch(p):
            raise Invalid(f"types must be event types or patterns like 'alarm.*,job.failed', got {p!r}")
    return patterns


def read(
    conn: Redis, since: str | None = None, limit: int = 100, types: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """Return up to `limit` events (of `types`) newer than event id `since`, or the newest ones, oldest first."""
    found: list[dict[str, Any]] = []
    if since is None:
        newest = cast(list[tuple[bytes, dict[bytes, bytes]]], conn.xrevrange(keys.events_stream(), count=limit * 4))
        found = [e for e in (_decode(i, f) for i, f in newest) if matches(e["type"], types)][:limit]
        return list(reversed(found))
    cursor = since
    while len(found) < limit:
        batch = cast(list[tuple[bytes, dict[bytes, bytes]]],
                     conn.xrange(keys.events_stream(), min=f"({cursor}", count=max(limit, 100)))  # fmt: skip
        if not batch:
            break
        for entry_id, fields in batch:
            event = _decode(entry_id, fields)
            cursor = event["id"]
            if matches(event["type"], types):
                found.append(event)
                if len(found) == limit:
                    break
    return found


def _decode(entry_id: bytes | str, fields: dict[bytes, bytes]) -> dict[str, Any]:
    eid = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return envelope(eid, fields[b"type"].decode(), json.loads(fields[b"data"]), float(fields[b"ts"]))
