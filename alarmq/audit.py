"""The audit log: every change made through the API, the CLI or the page, with who, when, before and after.

Entries live in a capped Redis stream (about MAXLEN kept, oldest dropped
first); the stream id is the entry id and orders them. Each entry is
announced as an `audit.recorded` event, without its before/after snapshots.
Snapshots are the redacted views the API shows: a channel's secrets are
"***", an alarm's heartbeat ping token is left out, a token is its name and
role, never its secret or hash.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any, cast

from alarmq import auth, channels, events, jobs, keys, monitors, schedules
from alarmq.connection import Redis
from alarmq.errors import Invalid, NotFound

MAXLEN = 100_000
MAX_REASON = 500
VIAS = ("api", "cli", "page")
ENTRY_ID_PATTERN = r"^\d{1,19}-\d{1,19}$"

# Runtime bookkeeping that changes without anyone changing anything; left out of snapshots.
_SCHEDULE_NOISE = ("next_slot", "last_slot", "last_job", "anchor", "fire_once", "version", "updated_at", "declared")
_ALARM_NOISE = ("ping_token", "last_result", "last_ping", "last_fail", "last_notified", "version")
_JOB_FIELDS = ("id", "task", "kwargs", "status", "queue", "source")


def record(
    conn: Redis,
    who: str,
    action: str,
    target: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    reason: str | None = None,
    via: str = "api",
    request: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Append an entry to the audit log, announce it, and return it."""
    if via not in VIAS:
        raise Invalid(f"via must be one of {', '.join(VIAS)}, got {via!r}")
    entry: dict[str, Any] = {
        "ts": time.time(),
        "who": who,
        "via": via,
        "action": action,
        "target": target,
        "reason": (reason or "")[:MAX_REASON] or None,
        "before": before,
        "after": after,
    }
    if request is not None:
        entry["request"] = request
    raw_id = conn.xadd(keys.audit_log(), {"entry": json.dumps(entry, default=str)}, maxlen=MAXLEN, approximate=True)
    entry_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
    events.publish(conn, "audit.recorded", {"id": entry_id, "who": who, "via": via, "action": action, "target": target})
    return {"id": entry_id, **entry}


def read(conn: Redis, limit: int = 50, cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
    """Return up to `limit` entries older than `cursor` (an entry id), newest first, and the next cursor."""
    if cursor is not None and not re.fullmatch(ENTRY_ID_PATTERN, cursor):
        raise Invalid("cursor must be the next_cursor of a previous page")
    if cursor is not None and not any(int(part) for part in cursor.split("-")):
        return [], None  # nothing is older than 0-0 (and Redis refuses an exclusive range below it)
    top = f"({cursor}" if cursor is not None else "+"
    found = cast(
        list[tuple[bytes, dict[bytes, bytes]]], conn.xrevrange(keys.audit_log(), max=top, min="-", count=limit)
    )
    entries = [{"id": entry_id.decode(), **json.loads(fields[b"entry"])} for entry_id, fields in found]
    return entries, entries[-1]["id"] if len(entries) == limit else None


def snapshot(conn: Redis, target: str) -> dict[str, Any] | None:
    """Return the current state of `kind:id` as the audit log keeps it, or None when it does not exist."""
    kind, _, ident = target.partition(":")
    try:
        if kind == "schedule":
            return _without(schedules.load(conn, ident), _SCHEDULE_NOISE)
        if kind == "alarm":
            return _without(monitors.load(conn, ident), _ALARM_NOISE)
        if kind == "channel":
            return channels.describe(channels.load(conn, ident))
        if kind == "job":
            described = jobs.describe(jobs.fetch(conn, ident))
            return {k: described.get(k) for k in _JOB_FIELDS}
        if kind == "token":
            return auth.describe_token(conn, ident)
    except NotFound:
        return None
    return None


def _without(found: dict[str, Any], noise: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in found.items() if k not in noise}
