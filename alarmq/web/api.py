"""Serve the JSON API under /api/v1: health, tasks, jobs, events and the OpenAPI description."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Blueprint, Response, current_app, jsonify, request, url_for

from alarmq import events, jobs, registry
from alarmq.errors import Invalid
from alarmq.health import health
from alarmq.web import inputs, redis_of, settings_of
from alarmq.web.openapi import spec

bp = Blueprint("api", __name__, url_prefix="/api/v1")

F = TypeVar("F", bound=Callable[..., Any])

JOB_FIELDS = ("task", "kwargs", "queue", "timeout", "retries")
MAX_LIMIT = 500


@bp.get("/health")
def get_health() -> tuple[Response, int]:
    """Report Redis, workers, schedulers and queue depths."""
    report = health(redis_of(current_app), sorted(jobs.known_queues()))
    return jsonify(report), 200 if report["redis"]["ok"] else 503


@bp.get("/openapi.json")
def get_openapi() -> Response:
    """Describe every route in OpenAPI 3."""
    return jsonify(spec())


@bp.get("/tasks")
def list_tasks() -> Response:
    """List the registered tasks with their parameter schemas."""
    return jsonify(tasks=[t.describe() for t in registry.all_tasks()])


@bp.get("/tasks/<name>")
def get_task(name: str) -> Response:
    """Show one registered task."""
    return jsonify(registry.find(name).describe())


@bp.post("/jobs")
def create_job() -> tuple[Response, int, dict[str, str]]:
    """Enqueue a registered task."""
    body = inputs.json_body()
    unknown = sorted(set(body) - set(JOB_FIELDS))
    if unknown:
        raise Invalid(f"unknown field {unknown[0]!r}; a job takes: {', '.join(JOB_FIELDS)}")
    if "task" not in body:
        raise Invalid("task is required; GET /api/v1/tasks lists them")
    for name in ("kwargs", "queue", "timeout", "retries"):
        if name in body and body[name] is None:
            raise Invalid(f"{name} must not be null; leave it out to use the default")
    job = jobs.enqueue(
        redis_of(current_app),
        settings_of(current_app),
        body["task"],
        body.get("kwargs"),
        queue_name=body.get("queue"),
        timeout=body.get("timeout"),
        retries=body.get("retries"),
        source="api",
    )
    url = url_for("api.get_job", job_id=job.id)
    return jsonify(id=job.id, status=job.get_status(refresh=False).value, url=url), 202, {"Location": url}


@bp.get("/jobs")
def list_jobs() -> Response:
    """List jobs newest first, filtered by status or task, a page at a time."""
    limit = inputs.int_arg("limit", 50, 1, MAX_LIMIT)
    cursor = inputs.cursor_arg()
    page, next_cursor = jobs.list_jobs(
        redis_of(current_app),
        status=request.args.get("status"),
        task=request.args.get("task"),
        limit=limit,
        cursor=cursor,
    )
    return jsonify(jobs=page, next_cursor=None if next_cursor is None else repr(next_cursor))


@bp.get("/jobs/<job_id>")
def get_job(job_id: str) -> Response:
    """Show one job with its status, result or error."""
    return jsonify(jobs.describe(jobs.fetch(redis_of(current_app), job_id)))


@bp.post("/jobs/<job_id>/cancel")
def cancel_job(job_id: str) -> tuple[Response, int]:
    """Cancel a waiting job or stop a running one."""
    job = jobs.cancel(redis_of(current_app), job_id)
    return jsonify(jobs.describe(job, job.get_status())), 202


@bp.post("/jobs/<job_id>/requeue")
def requeue_job(job_id: str) -> tuple[Response, int]:
    """Put a failed, stopped or canceled job back on its queue."""
    job = jobs.requeue(redis_of(current_app), job_id)
    return jsonify(jobs.describe(job, job.get_status())), 202


@bp.delete("/jobs/<job_id>")
def delete_job(job_id: str) -> tuple[str, int]:
    """Delete a job and its results."""
    jobs.delete(redis_of(current_app), job_id)
    return "", 204


@bp.get("/events")
def list_events() -> Response:
    """Return recent events, or those after `since`, oldest first."""
    limit = inputs.int_arg("limit", 100, 1, 1000)
    since = request.args.get("since")
    if since is not None and not events.is_event_id(since):
        raise Invalid("since must be an event id like 1733320000000-0")
    types = events.parse_types(request.args.get("types"))
    return jsonify(events=events.read(redis_of(current_app), since, limit, types))


@bp.get("/live")
def get_live() -> Response:
    """Say where the event WebSocket is: /ws on this origin, or on a side port (under waitress)."""
    port = current_app.config.get("ALARMQ_WS_PORT")
    return jsonify(path="/ws", port=port, same_origin=port is None)
