"""Serve the schedule control panel's API: /api/v1/schedules and /api/v1/scheduler."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, url_for

from alarmq import ledger, runs, scheduler, schedules, triggers
from alarmq.errors import Invalid
from alarmq.web import inputs, redis_of, settings_of

bp = Blueprint("schedules", __name__, url_prefix="/api/v1")

MAX_PAUSE = 366 * 86400


def _shown(schedule: dict[str, Any]) -> dict[str, Any]:
    return schedules.describe(schedule, time.time())


@bp.get("/schedules")
def list_schedules() -> Response:
    """List every schedule."""
    now = time.time()
    return jsonify(schedules=[schedules.describe(s, now) for s in schedules.list_all(redis_of(current_app))])


@bp.post("/schedules")
def create_schedule() -> tuple[Response, int, dict[str, str]]:
    """Create a schedule."""
    created = schedules.create(redis_of(current_app), inputs.json_body(), time.time())
    url = url_for("schedules.get_schedule", schedule_id=created["id"])
    return jsonify(_shown(created)), 201, {"Location": url}


@bp.get("/schedules/preview")
def preview_schedule() -> Response:
    """Return the next 10 fire times of an interval or a cron in a zone, or why it is invalid."""
    args = request.args
    interval: object = args.get("interval")
    if isinstance(interval, str):
        try:
            interval = int(interval)
        except ValueError:
            raise Invalid(f"interval must be a whole number of seconds, got {interval!r}") from None
    trigger = triggers.trigger_of(interval, args.get("cron"), args.get("tz") or args.get("timezone"))
    times = triggers.preview(trigger, time.time(), 10)
    return jsonify(
        trigger=trigger.describe(), timezone=trigger.timezone, next=[_times(t, trigger.timezone) for t in times]
    )


def _times(epoch: int, zone: str) -> dict[str, Any]:
    from zoneinfo import ZoneInfo

    return {
        "utc": triggers.to_datetime(epoch).isoformat(),
        "local": datetime.fromtimestamp(epoch, ZoneInfo(zone)).isoformat(),
        "epoch": epoch,
    }


@bp.get("/schedules/<schedule_id>")
def get_schedule(schedule_id: str) -> Response:
    """Show one schedule, with which fields override its declared default."""
    return jsonify(_shown(schedules.load(redis_of(current_app), schedule_id)))


@bp.patch("/schedules/<schedule_id>")
def patch_schedule(schedule_id: str) -> Response:
    """Change some fields; the running scheduler applies it within a tick."""
    changed = schedules.patch(redis_of(current_app), schedule_id, inputs.json_body(), time.time())
    return jsonify(_shown(changed))


@bp.delete("/schedules/<schedule_id>")
def delete_schedule(schedule_id: str) -> tuple[str, int]:
    """Delete a schedule and its ledger."""
    schedules.delete(redis_of(current_app), schedule_id)
    return "", 204


@bp.post("/schedules/<schedule_id>/run")
def run_schedule(schedule_id: str) -> tuple[Response, int]:
    """Enqueue an extra run now, recorded in the ledger."""
    conn = redis_of(current_app)
    job = runs.enqueue_now(conn, settings_of(current_app), schedules.load(conn, schedule_id), time.time(), "run now")
    return jsonify(
        id=job.id, status=job.get_status(refresh=False).value, url=url_for("api.get_job", job_id=job.id)
    ), 202


@bp.post("/schedules/<schedule_id>/pause")
def pause_schedule(schedule_id: str) -> Response:
    """Skip slots for `seconds`, or until `until` (ISO 8601 or Unix seconds)."""
    body = inputs.json_body()
    now = time.time()
    unknown = sorted(set(body) - {"seconds", "until"})
    if unknown or len(body) != 1:
        raise Invalid("send exactly one of seconds (a number) or until (ISO 8601 time or Unix seconds)")
    until = inputs.until(body, now, MAX_PAUSE)
    return jsonify(_shown(schedules.pause(redis_of(current_app), schedule_id, until, now)))


@bp.post("/schedules/<schedule_id>/resume")
def resume_schedule(schedule_id: str) -> Response:
    """End a pause now."""
    return jsonify(_shown(schedules.resume(redis_of(current_app), schedule_id, time.time())))


@bp.post("/schedules/<schedule_id>/enable")
def enable_schedule(schedule_id: str) -> Response:
    """Turn a schedule on (same as PATCH {"enabled": true})."""
    return jsonify(_shown(schedules.patch(redis_of(current_app), schedule_id, {"enabled": True}, time.time())))


@bp.post("/schedules/<schedule_id>/disable")
def disable_schedule(schedule_id: str) -> Response:
    """Turn a schedule off (same as PATCH {"enabled": false})."""
    return jsonify(_shown(schedules.patch(redis_of(current_app), schedule_id, {"enabled": False}, time.time())))


@bp.post("/schedules/<schedule_id>/reset")
def reset_schedule(schedule_id: str) -> Response:
    """Drop every override and return to the schedule declared in code."""
    return jsonify(_shown(schedules.reset(redis_of(current_app), schedule_id, time.time())))


@bp.get("/schedules/<schedule_id>/runs")
def list_runs(schedule_id: str) -> Response:
    """Return the slot ledger, newest first, a page at a time."""
    conn = redis_of(current_app)
    schedules.load(conn, schedule_id)
    entries, cursor = ledger.read(conn, schedule_id, inputs.int_arg("limit", 50, 1, ledger.CAP), inputs.cursor_arg())
    return jsonify(runs=entries, next_cursor=None if cursor is None else repr(cursor))


@bp.get("/scheduler")
def get_scheduler() -> Response:
    """Show the leader, standbys, last tick, tick duration and lag."""
    return jsonify(scheduler.status(redis_of(current_app)))


@bp.post("/scheduler/reload")
def reload_scheduler() -> tuple[Response, int]:
    """Re-sync the declared schedules and reconcile everything (the 'restart the scheduler' button)."""
    return jsonify(schedules.reload(redis_of(current_app), time.time())), 202
