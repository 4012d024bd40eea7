"""Own the event envelope: build it, publish it and read it back from the stream.

Every event is `{"id", "type", "ts", "data"}` as JSON. It is published on one
pub/sub channel for live listeners and appended to a capped stream whose entry
id is the event id, so a client that was away can replay what it missed.
"""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any, cast

import redis

from alarmq import keys
from alarmq.connection import Redis

log = logging.getLogger(__name__)

STREAM_MAXLEN = 10_000
EVENT_ID_PATTERN = r"^\d{1,19}(-\d{1,19})?$"
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


def publish(conn: Redis, type_: str, data: dict[str, Any]) -> dict[str, Any] | None:
    """Append an event to the stream and publish it; return it, or None if Redis failed."""
    ts = time.time()
    try:
        # The stream assigns the id, so ids are ordered and replay can resume from one.
        event_id = conn.xadd(
            keys.events_stream(), {"type": type_, "ts": repr(ts), "data": json.dumps(data)},
            maxlen=STREAM_MAXLEN, approximate=True,
        )  # fmt: skip
        event = envelope(event_id.decode() if isinstance(event_id, bytes) else str(event_id), type_, data, ts)
        conn.publish(keys.events_channel(), json.dumps(event))
    except _PUBLISH_ERRORS as exc:
        log.warning("event %s not published: redis unavailable (%s)", type_, exc)
        return None
    return event


def read(conn: Redis, since: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Return up to `limit` events newer than event id `since` (or the newest ones)."""
    entries: list[tuple[bytes, dict[bytes, bytes]]]
    if since:
        entries = cast(Any, conn.xrange(keys.events_stream(), min=f"({since}", count=limit))
    else:
        entries = list(reversed(cast(Any, conn.xrevrange(keys.events_stream(), count=limit))))
    return [_decode(entry_id, fields) for entry_id, fields in entries]


def _decode(entry_id: bytes | str, fields: dict[bytes, bytes]) -> dict[str, Any]:
    eid = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return envelope(eid, fields[b"type"].decode(), json.loads(fields[b"data"]), float(fields[b"ts"]))
