"""Own the schedule model: validation, storage in Redis, declarations, overrides and runtime control.

A schedule is data in Redis, the one source of truth. Its hash holds `spec`
(what runs and when, as JSON), `declared` (the default from code, if declared
there) and runtime state. Which fields are overridden is derived by comparing
spec with declared. Every change bumps `version` under WATCH (compare-and-set),
marks the schedule dirty and wakes the leader, which reconciles it within a tick.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any, cast

import redis

from alarmq import events, jobs, keys, ledger, registry, triggers
from alarmq.connection import Redis
from alarmq.errors import Conflict, Invalid, NotFound

ID_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
FIELDS = ("task", "kwargs", "interval", "cron", "timezone", "enabled", "queue", "timeout", "misfire", "overlap",
          "description")  # fmt: skip
DEFAULTS: dict[str, Any] = {
    "kwargs": {},
    "interval": None,
    "cron": None,
    "timezone": "UTC",
    "enabled": True,
    "queue": keys.SCHEDULED_QUEUE,
    "timeout": None,
    "misfire": "skip",
    "overlap": "skip",
    "description": "",
}
MISFIRE = ("skip", "once")
OVERLAP = ("skip", "allow")
CAS_ATTEMPTS = 20


def validate_id(schedule_id: object) -> str:
    """Return `schedule_id` if it is a valid schedule id, or raise Invalid."""
    if not isinstance(schedule_id, str) or not ID_RE.fullmatch(schedule_id):
        raise Invalid(f"id must be 1-64 of a-z, 0-9, '_' and '-', starting with a letter or digit, got {schedule_id!r}")
    return schedule_id


def validate_spec(data: dict[str, Any]) -> dict[str, Any]:
    """Return a complete, checked spec from `data`, or raise Invalid naming the field."""
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise Invalid(f"unknown field {unknown[0]!r}; a schedule takes: id, {', '.join(FIELDS)}")
    spec = {**DEFAULTS, **data}
    if "task" not in data:
        raise Invalid("task is required; GET /api/v1/tasks lists them")
    task = registry.get(spec["task"])
    spec["kwargs"] = task.validate(spec["kwargs"])
    interval = spec["interval"]
    if isinstance(interval, str):
        interval = triggers.parse_every(interval)
    trigger = triggers.trigger_of(interval, spec["cron"], spec["timezone"])
    spec.update(interval=trigger.interval, cron=trigger.cron, timezone=trigger.timezone)
    if not isinstance(spec["enabled"], bool):
        raise Invalid(f"enabled must be true or false, got {spec['enabled']!r}")
    if spec["queue"] not in jobs.known_queues():
        raise Invalid(f"queue must be one of {', '.join(sorted(jobs.known_queues()))}, got {spec['queue']!r}")
    if spec["timeout"] is not None:
        spec["timeout"] = jobs.whole(spec["timeout"], "timeout", 1, jobs.MAX_TIMEOUT, 0)
    for name, choices in (("misfire", MISFIRE), ("overlap", OVERLAP)):
        if spec[name] not in choices:
            raise Invalid(f"{name} must be one of {', '.join(choices)}, got {spec[name]!r}")
    if not isinstance(spec["description"], str) or len(spec["description"]) > 500:
        raise Invalid("description must be text of at most 500 characters")
    return spec


def quiet(spec: dict[str, Any]) -> bool:
    """Return True if the schedule runs a quiet task, whose routine runs stay out of the event stream."""
    try:
        return registry.get(spec["task"]).quiet
    except Invalid:
        return False


def trigger(spec: dict[str, Any]) -> triggers.Trigger:
    """Return the trigger of a validated spec."""
    return triggers.Trigger(interval=spec["interval"], cron=spec["cron"], timezone=spec["timezone"])


# -- reading -----------------------------------------------------------------------


def load(conn: Redis, schedule_id: str) -> dict[str, Any]:
    """Return the stored schedule with its spec, declared default and state, or raise NotFound."""
    raw = cast(dict[bytes, bytes], conn.hgetall(keys.schedule(schedule_id)))
    if not raw or b"spec" not in raw:
        raise NotFound(f"no schedule {schedule_id!r}")
    return decode(schedule_id, raw)


def decode(schedule_id: str, raw: dict[bytes, bytes]) -> dict[str, Any]:
    """Return a schedule from its raw Redis hash."""
    state = {k.decode(): v.decode() for k, v in raw.items()}
    spec = json.loads(state["spec"])
    declared = json.loads(state["declared"]) if state.get("declared") else None
    return {
        "id": schedule_id,
        **spec,
        "source": state.get("source", "api"),
        "declared": declared,
        "overridden": sorted(f for f in FIELDS if declared is not None and spec.get(f) != declared.get(f)),
        "paused_until": _num(state.get("paused_until")),
        "anchor": int(state.get("anchor") or 0),
        "next_slot": _num(state.get("next_slot")),
        "last_slot": _num(state.get("last_slot")),
        "last_job": state.get("last_job") or None,
        "fire_once": state.get("fire_once") == "1",
        "off_since": _num(state.get("off_since")),
        "version": int(state.get("version") or 0),
        "created_at": _num(state.get("created_at")),
        "updated_at": _num(state.get("updated_at")),
    }


def list_all(conn: Redis) -> list[dict[str, Any]]:
    """Return every schedule, sorted by id."""
    ids = sorted(m.decode() for m in cast(set[bytes], conn.smembers(keys.schedules_index())))
    with conn.pipeline(transaction=False) as pipe:
        for sid in ids:
            pipe.hgetall(keys.schedule(sid))
        raws = pipe.execute()
    return [decode(sid, raw) for sid, raw in zip(ids, raws, strict=True) if raw and b"spec" in raw]


def describe(schedule: dict[str, Any], now: float) -> dict[str, Any]:
    """Return the schedule as the API shows it, with its next fire times."""
    shown = {k: v for k, v in schedule.items() if k not in ("declared", "anchor", "fire_once", "off_since")}
    shown["trigger"] = trigger(schedule).describe()
    shown["paused"] = bool(schedule["paused_until"] and schedule["paused_until"] > now)
    # The times it will really run: none while disabled, none before a pause ends.
    start = max(now, schedule["paused_until"] or 0)
    runs = schedule["enabled"]
    shown["next_fire_times"] = triggers.preview(trigger(schedule), start, 3, schedule["anchor"] or None) if runs else []
    return shown


# -- writing ---------------------------------------------------------------------------


def _update(conn: Redis, schedule_id: str, change: Callable[[dict[str, Any] | None], dict[str, str] | None]) -> None:
    """Apply `change` to the schedule's hash under WATCH; retry quietly when another writer won."""
    key = keys.schedule(schedule_id)
    for _ in range(CAS_ATTEMPTS):
        with conn.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(key)  # type: ignore[no-untyped-call]
                raw = cast(dict[bytes, bytes], pipe.hgetall(key))
                current = decode(schedule_id, raw) if raw and b"spec" in raw else None
                fields = change(current)
                if fields is None:
                    pipe.unwatch()
                    return
                pipe.multi()
                now = time.time()
                pipe.hset(
                    key,
                    mapping=cast(Any, {**fields, "version": (current or {}).get("version", 0) + 1, "updated_at": now}),
                )
                pipe.sadd(keys.schedules_index(), schedule_id)
                pipe.sadd(keys.schedules_dirty(), schedule_id)
                pipe.execute()
            except redis.exceptions.WatchError:
                continue
        conn.publish(keys.schedules_changed_channel(), schedule_id)
        events.publish(conn, "schedule.changed", {"schedule": schedule_id, "fields": sorted(fields)})
        return
    raise Conflict(f"schedule {schedule_id} is being changed by someone else; try again")


def create(conn: Redis, data: dict[str, Any], now: float) -> dict[str, Any]:
    """Create a schedule from API input; raise Conflict if the id is taken."""
    data = dict(data)
    schedule_id = validate_id(data.pop("id", None))
    spec = validate_spec(data)

    def change(current: dict[str, Any] | None) -> dict[str, str]:
        if current is not None:
            raise Conflict(f"schedule {schedule_id!r} exists; PATCH it or DELETE it first")
        return {"spec": json.dumps(spec), "source": "api", "anchor": str(int(now)), "created_at": str(now)}

    _update(conn, schedule_id, change)
    return load(conn, schedule_id)


def patch(conn: Redis, schedule_id: str, changes: dict[str, Any], now: float) -> dict[str, Any]:
    """Change some fields of a schedule; an edit of a declared one is kept as an override."""
    if "id" in changes and changes["id"] != schedule_id:
        raise Invalid("id cannot be changed; create a new schedule instead")
    changes = {k: v for k, v in changes.items() if k != "id"}

    def change(current: dict[str, Any] | None) -> dict[str, str]:
        if current is None:
            raise NotFound(f"no schedule {schedule_id!r}")
        merged = {f: current[f] for f in FIELDS}
        # Giving one kind of trigger replaces the other.
        if "interval" in changes and "cron" not in changes:
            merged["cron"] = None
        if "cron" in changes and "interval" not in changes:
            merged["interval"] = None
        spec = validate_spec({**merged, **changes})
        fields = {"spec": json.dumps(spec)}
        if spec["interval"] != current["interval"]:
            fields["anchor"] = str(int(now))
        fields.update(_switching(current, spec, now))
        return fields

    _update(conn, schedule_id, lambda c: change(_with_skips(conn, schedule_id, c)))
    return load(conn, schedule_id)


def _switching(current: dict[str, Any], spec: dict[str, Any], now: float) -> dict[str, str]:
    """Return the state fields for turning a schedule off or back on."""
    if current["enabled"] and not spec["enabled"]:
        return {"off_since": str(now)}
    if not current["enabled"] and spec["enabled"]:
        still_paused = bool(current["paused_until"] and current["paused_until"] > now)
        return {} if still_paused else _coming_back(current, spec)
    return {}


def _coming_back(current: dict[str, Any], spec: dict[str, Any]) -> dict[str, str]:
    # misfire=once: one run for all the slots skipped while it was off; skip: none.
    fire = spec["misfire"] == "once" and current["off_since"] is not None and bool(current["last_skipped"])
    return {"fire_once": "1" if fire else "0", "off_since": ""}


def delete(conn: Redis, schedule_id: str) -> None:
    """Delete a schedule and its ledger; the leader removes its pending run."""
    if not conn.exists(keys.schedule(schedule_id)):
        raise NotFound(f"no schedule {schedule_id!r}")
    with conn.pipeline(transaction=True) as pipe:
        pipe.delete(keys.schedule(schedule_id))
        pipe.srem(keys.schedules_index(), schedule_id)
        pipe.sadd(keys.schedules_dirty(), schedule_id)
        pipe.execute()
    ledger.delete(conn, schedule_id)
    conn.publish(keys.schedules_changed_channel(), schedule_id)
    events.publish(conn, "schedule.deleted", {"schedule": schedule_id})


def pause(conn: Redis, schedule_id: str, until: float, now: float) -> dict[str, Any]:
    """Skip the schedule's slots until `until` (Unix seconds)."""
    if until <= now:
        raise Invalid("pause must end in the future")

    def change(current: dict[str, Any] | None) -> dict[str, str]:
        if current is None:
            raise NotFound(f"no schedule {schedule_id!r}")
        return {"paused_until": str(until), "off_since": str(current["off_since"] or now)}

    _update(conn, schedule_id, change)
    return load(conn, schedule_id)


def resume(conn: Redis, schedule_id: str, now: float) -> dict[str, Any]:
    """End a pause now, firing once for skipped slots if the misfire policy says so."""

    def change(current: dict[str, Any] | None) -> dict[str, str]:
        if current is None:
            raise NotFound(f"no schedule {schedule_id!r}")
        if not current["paused_until"] or current["paused_until"] <= now:
            raise Conflict(f"schedule {schedule_id} is not paused")
        # Still disabled: the schedule stays off, and so does the record of since when.
        return (
            {"paused_until": ""} if not current["enabled"] else {"paused_until": "", **_coming_back(current, current)}
        )

    _update(conn, schedule_id, lambda c: change(_with_skips(conn, schedule_id, c)))
    return load(conn, schedule_id)


def reset(conn: Redis, schedule_id: str, now: float) -> dict[str, Any]:
    """Drop every override and return to the schedule declared in code."""

    def change(current: dict[str, Any] | None) -> dict[str, str]:
        if current is None:
            raise NotFound(f"no schedule {schedule_id!r}")
        if current["declared"] is None:
            raise Conflict(f"schedule {schedule_id} was created through the API; it has no declared default")
        fields = {"spec": json.dumps(current["declared"])}
        if current["declared"]["interval"] != current["interval"]:
            fields["anchor"] = str(int(now))
        fields.update(_switching(current, current["declared"], now))
        return fields

    _update(conn, schedule_id, lambda c: change(_with_skips(conn, schedule_id, c)))
    return load(conn, schedule_id)


def _with_skips(conn: Redis, schedule_id: str, current: dict[str, Any] | None) -> dict[str, Any] | None:
    """Add `last_skipped`: whether any slot was skipped since the schedule went off."""
    if current is None:
        return None
    since = current["off_since"]
    skipped = since is not None and any(e["outcome"] == "skipped" for e in ledger.since(conn, schedule_id, since))
    return {**current, "last_skipped": skipped}


def sync_declared(conn: Redis, now: float) -> dict[str, list[str]]:
    """Make Redis hold exactly the schedules declared in code, keeping operators' overrides."""
    declared = {sid: validate_spec(dict(fields)) for sid, fields in registry.declared_schedules().items()}
    for sid in declared:
        validate_id(sid)
    report: dict[str, list[str]] = {"created": [], "updated": [], "removed": []}
    for sid, spec in declared.items():

        def change(
            current: dict[str, Any] | None, sid: str = sid, spec: dict[str, Any] = spec
        ) -> dict[str, str] | None:
            if current is None:
                report["created"].append(sid)
                return {"spec": json.dumps(spec), "declared": json.dumps(spec), "source": "code",
                        "anchor": str(int(now)), "created_at": str(now)}  # fmt: skip
            old = current["declared"] or {}
            # A field the operator did not override follows the code.
            merged = {f: spec[f] if current.get(f) == old.get(f) else current[f] for f in FIELDS}
            if current["declared"] == spec and current["source"] == "code":
                return None
            report["updated"].append(sid)
            return {"spec": json.dumps(validate_spec(merged)), "declared": json.dumps(spec), "source": "code"}

        _update(conn, sid, change)
    for existing in list_all(conn):
        if existing["source"] == "code" and existing["id"] not in declared:
            delete(conn, existing["id"])
            report["removed"].append(existing["id"])
    return report


def reload(conn: Redis, now: float) -> dict[str, list[str]]:
    """Re-sync the declared schedules and have the leader reconcile every schedule now."""
    report = sync_declared(conn, now)
    ids = cast(set[bytes], conn.smembers(keys.schedules_index()))
    if ids:
        conn.sadd(keys.schedules_dirty(), *ids)
    conn.publish(keys.schedules_changed_channel(), "*")
    return report


def _num(value: str | None) -> float | None:
    if value is None or value == "":
        return None
    number = float(value)
    return int(number) if number.is_integer() else number
