"""Keep each schedule's slot ledger: every expected fire time and what became of it.

Outcomes: `enqueued` (with the job id), `started`, `finished`, `failed`,
`skipped` (with a reason: paused, disabled, overlap, duplicate) and `missed`
(no scheduler was alive in time). Capped to the newest CAP slots per schedule.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any, cast

from alarmq import events, keys
from alarmq.connection import Redis

CAP = 500
OUTCOMES = ("enqueued", "started", "finished", "failed", "skipped", "missed")


def record(
    conn: Redis, schedule_id: str, slot: str, at: float, outcome: str, publish: bool = True, **fields: Any
) -> None:
    """Write the record of one slot (replacing an earlier one for the same slot) and trim the ledger."""
    entry = {"slot": slot, "at": at, "time": _iso(at), "outcome": outcome, "updated": time.time(), **fields}
    with conn.pipeline(transaction=True) as pipe:
        pipe.hset(keys.schedule_ledger(schedule_id), slot, json.dumps(entry))
        pipe.zadd(keys.schedule_ledger_order(schedule_id), {slot: at})
        pipe.execute()
    _trim(conn, schedule_id)
    if publish:
        events.publish(conn, f"schedule.{outcome}", {"schedule": schedule_id, **entry})


def update(conn: Redis, schedule_id: str, slot: str, outcome: str, publish: bool = True, **fields: Any) -> None:
    """Move an existing slot record to `outcome`, keeping what it already says."""
    raw = conn.hget(keys.schedule_ledger(schedule_id), slot)
    entry: dict[str, Any] = json.loads(cast(bytes, raw)) if raw else {"slot": slot, "at": time.time()}
    at = float(entry["at"])
    fields = {**{k: v for k, v in entry.items() if k not in ("outcome", "updated", "time", "slot", "at")}, **fields}
    record(conn, schedule_id, slot, at, outcome, publish, **fields)


def read(
    conn: Redis, schedule_id: str, limit: int = 50, before: float | None = None
) -> tuple[list[dict[str, Any]], float | None]:
    """Return up to `limit` slot records, newest first, and the cursor of the next page."""
    upper = "+inf" if before is None else f"({before!r}"
    found = cast(
        list[tuple[bytes, float]],
        conn.zrevrangebyscore(
            keys.schedule_ledger_order(schedule_id), upper, "-inf", start=0, num=limit, withscores=True
        ),
    )
    if not found:
        return [], None
    raw = cast(list[bytes | None], conn.hmget(keys.schedule_ledger(schedule_id), [s for s, _ in found]))
    entries = [json.loads(r) for r in raw if r]
    return entries, (found[-1][1] if len(found) == limit else None)


def since(conn: Redis, schedule_id: str, at: float) -> list[dict[str, Any]]:
    """Return the slot records from fire time `at` on, oldest first."""
    slots = cast(list[bytes], conn.zrangebyscore(keys.schedule_ledger_order(schedule_id), at, "+inf"))
    if not slots:
        return []
    raw = cast(list[bytes | None], conn.hmget(keys.schedule_ledger(schedule_id), slots))
    return [json.loads(r) for r in raw if r]


def all_records(conn: Redis, schedule_id: str) -> list[dict[str, Any]]:
    """Return every kept slot record, oldest first."""
    entries, _ = read(conn, schedule_id, limit=CAP * 2)
    return list(reversed(entries))


def delete(conn: Redis, schedule_id: str) -> None:
    """Forget a schedule's ledger."""
    conn.delete(keys.schedule_ledger(schedule_id), keys.schedule_ledger_order(schedule_id))


def _trim(conn: Redis, schedule_id: str) -> None:
    order = keys.schedule_ledger_order(schedule_id)
    if conn.zcard(order) <= CAP:
        return
    old = cast(list[bytes], conn.zrange(order, 0, -CAP - 1))
    if old:
        with conn.pipeline(transaction=True) as pipe:
            pipe.zrem(order, *old)
            pipe.hdel(keys.schedule_ledger(schedule_id), *old)
            pipe.execute()


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat()
