"""Serve the alarms API: /api/v1/alarms, heartbeat pings and metric samples."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, url_for

from alarmq import engine, keys, monitors
from alarmq.errors import Invalid
from alarmq.web import inputs, redis_of, settings_of

bp = Blueprint("alarms", __name__, url_prefix="/api/v1")

MAX_SILENCE = 366 * 86400


def _shown(alarm: dict[str, Any]) -> dict[str, Any]:
    return monitors.describe(redis_of(current_app), alarm, time.time())


@bp.get("/alarms")
def list_alarms() -> Response:
    """List every alarm with its state."""
    return jsonify(alarms=monitors.describe_all(redis_of(current_app), time.time()))


@bp.post("/alarms")
def create_alarm() -> tuple[Response, int, dict[str, str]]:
    """Create an alarm; a heartbeat answers with its ping_url."""
    created = monitors.create(redis_of(current_app), inputs.json_body(), time.time())
    return jsonify(_shown(created)), 201, {"Location": url_for("alarms.get_alarm", alarm_id=created["id"])}


@bp.get("/alarms/<alarm_id>")
def get_alarm(alarm_id: str) -> Response:
    """Show one alarm: state, last_result, since, uptime."""
    return jsonify(_shown(monitors.load(redis_of(current_app), alarm_id)))


@bp.patch("/alarms/<alarm_id>")
def patch_alarm(alarm_id: str) -> Response:
    """Change fields of an alarm; a new interval applies at once."""
    return jsonify(_shown(monitors.patch(redis_of(current_app), alarm_id, inputs.json_body(), time.time())))


@bp.delete("/alarms/<alarm_id>")
def delete_alarm(alarm_id: str) -> tuple[str, int]:
    """Delete an alarm and its history."""
    monitors.delete(redis_of(current_app), alarm_id)
    return "", 204


ACTIONS = ("ack", "silence", "unsilence", "check", "enable", "disable")
LOGS = ("results", "flips", "notifications")


def act_on_alarm(alarm_id: str, action: str) -> tuple[Response, int]:
    """Acknowledge, silence, unsilence, check now, enable or disable an alarm."""
    conn = redis_of(current_app)
    now = time.time()
    if action == "check":
        job = engine.check_now(conn, alarm_id)
        return jsonify(id=job.id, status="queued", url=url_for("api.get_job", job_id=job.id)), 202
    if action == "silence":
        body = inputs.json_body()
        unknown = sorted(set(body) - {"seconds", "until", "reason"})
        if unknown or ("seconds" in body) == ("until" in body):
            raise Invalid("send one of seconds or until, and optionally a reason")
        reason = body.get("reason", "")
        if not isinstance(reason, str) or len(reason) > 500:
            raise Invalid("reason must be text of at most 500 characters")
        until = inputs.until(body, now, MAX_SILENCE)
        return jsonify(_shown(monitors.act(conn, alarm_id, "silence", now, until=until, reason=reason))), 200
    if action not in ("ack", "unsilence", "enable", "disable"):
        raise Invalid(f"unknown action {action!r}; use ack, silence, unsilence, check, enable or disable")
    return jsonify(_shown(monitors.act(conn, alarm_id, action, now))), 200


def alarm_log(alarm_id: str, log: str) -> Response:
    """Return an alarm's recent results, flips or notifications, newest first."""
    conn = redis_of(current_app)
    monitors.load(conn, alarm_id)
    key = {"results": keys.alarm_results, "flips": keys.alarm_flips, "notifications": keys.alarm_notifications}
    if log not in key:
        raise Invalid(f"unknown log {log!r}; use results, flips or notifications")
    return jsonify({log: monitors.history(conn, key[log](alarm_id), inputs.int_arg("limit", 100, 1, 1000))})


for _action in ACTIONS:
    bp.add_url_rule(f"/alarms/<alarm_id>/{_action}", f"{_action}_alarm", act_on_alarm,
                    methods=["POST"], defaults={"action": _action})  # fmt: skip
for _log in LOGS:
    bp.add_url_rule(f"/alarms/<alarm_id>/{_log}", f"alarm_{_log}", alarm_log, defaults={"log": _log})


@bp.route("/heartbeats/<token>", methods=["GET", "POST"])
def heartbeat_ping(token: str) -> Response:
    """Record a heartbeat ping from a cron job or backup."""
    return jsonify(engine.ping(redis_of(current_app), settings_of(current_app), token, False, time.time()))


@bp.route("/heartbeats/<token>/fail", methods=["GET", "POST"])
def heartbeat_fail(token: str) -> Response:
    """Record that the job behind a heartbeat failed."""
    return jsonify(engine.ping(redis_of(current_app), settings_of(current_app), token, True, time.time()))


@bp.post("/metrics/<name>")
def push_metric(name: str) -> tuple[Response, int]:
    """Store a metric sample `{value, ts?}` and judge the threshold alarms watching it."""
    if not monitors.METRIC_RE.fullmatch(name):
        raise Invalid(f"metric names are like 'disk.used_pct', got {name!r}")
    body = inputs.json_body()
    unknown = sorted(set(body) - {"value", "ts"})
    if unknown:
        raise Invalid(f"unknown field {unknown[0]!r}; a sample takes value and ts")
    now = time.time()
    value = monitors.number("value", body.get("value"), -1e18, 1e18)
    ts = monitors.number("ts", body.get("ts", now), now - 86400, now + 300)
    watchers = engine.push_metric(redis_of(current_app), settings_of(current_app), name, value, ts)
    return jsonify(metric=name, value=value, ts=ts, alarms=watchers), 202
