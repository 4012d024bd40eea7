"""Describe the API in OpenAPI 3.1; a test checks every route is here and every route here exists."""

from __future__ import annotations

from typing import Any

from alarmq import __version__, events, jobs, ledger, registry, schedules, triggers
from alarmq.web.openapi_access import access_paths, with_forbidden
from alarmq.web.openapi_alarms import CHANNEL_SCHEMA, alarm_paths, channel_paths
from alarmq.web.openapi_common import _CURSOR, _READ, _WRITE, _errors, _limit, _ok

_JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}
_JOB = {"$ref": "#/components/schemas/Job"}


def _new_job(task: registry.Task) -> dict[str, Any]:
    """Return the body that enqueues `task`, with its own argument schema."""
    required = ["task", "kwargs"] if task.schema["required"] else ["task"]
    return {
        "type": "object",
        "title": task.name,
        "description": task.description,
        "required": required,
        "additionalProperties": False,
        "properties": {
            "task": {"const": task.name},
            "kwargs": task.schema,
            "queue": {"type": "string", "enum": sorted(jobs.known_queues())},
            "timeout": {"type": "integer", "minimum": 1, "maximum": jobs.MAX_TIMEOUT},
            "retries": {"type": "integer", "minimum": 0, "maximum": jobs.MAX_RETRIES},
        },
    }


_SCHEDULE_ID = {"name": "schedule_id", "in": "path", "required": True, "schema": {"type": "string"}}
_SCHEDULE = {"$ref": "#/components/schemas/Schedule"}


def _schedule_fields() -> dict[str, Any]:
    return {
        "interval": {"type": "integer", "minimum": 1, "maximum": triggers.MAX_INTERVAL, "description": "Seconds"},
        "cron": {"type": "string", "description": "5 fields: minute hour day month weekday"},
        "timezone": {"type": "string", "description": "IANA zone of the cron, like Europe/Warsaw (default UTC)"},
        "enabled": {"type": "boolean"},
        "queue": {"type": "string", "enum": sorted(jobs.known_queues())},
        "timeout": {"type": "integer", "minimum": 1, "maximum": jobs.MAX_TIMEOUT},
        "misfire": {"type": "string", "enum": list(schedules.MISFIRE)},
        "overlap": {"type": "string", "enum": list(schedules.OVERLAP)},
        "description": {"type": "string", "maxLength": 500},
    }


def _new_schedule(task: registry.Task) -> dict[str, Any]:
    """Return the body that creates a schedule of `task`."""
    required = ["id", "task", "kwargs"] if task.schema["required"] else ["id", "task"]
    return {
        "type": "object",
        "title": task.name,
        "required": required,
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$"},
            "task": {"const": task.name},
            "kwargs": task.schema,
            **_schedule_fields(),
        },
        "oneOf": [{"required": ["interval"]}, {"required": ["cron"]}],
    }


def _schedule_paths() -> dict[str, Any]:
    def action(summary: str, body: dict[str, Any] | None = None, codes: tuple[int, ...] = (404,)) -> dict[str, Any]:
        op: dict[str, Any] = {
            "summary": summary,
            "parameters": [_SCHEDULE_ID],
            "responses": {**_ok(200, _SCHEDULE), **_errors(*codes, *_READ)},
        }
        if body is not None:
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
            op["responses"].update(_errors(400, 413, 415, 422))
        return {"post": op}

    pause_body = {
        "oneOf": [
            {"type": "object", "required": ["seconds"], "additionalProperties": False,
             "properties": {"seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": 366 * 86400}}},
            {"type": "object", "required": ["until"], "additionalProperties": False,
             "properties": {"until": {"type": "string", "format": "date-time"}}},
        ]
    }  # fmt: skip
    return {
        "/schedules": {
            "get": {"summary": "Every schedule", "responses": {**_ok(200, {"type": "object"}), **_errors(*_READ)}},
            "post": {
                "summary": "Create a schedule (exactly one of interval or cron)",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "oneOf": [_new_schedule(t) for t in registry.all_tasks()]}}}},
                "responses": {**_ok(201, _SCHEDULE, "Created"), **_errors(409, *_WRITE)},
            },
        },
        "/schedules/preview": {
            "get": {
                "summary": "The next 10 fire times of an interval, or of a cron in a zone",
                "parameters": [
                    {"name": "interval", "in": "query", "schema": {"type": "integer", "minimum": 1}},
                    {"name": "cron", "in": "query", "schema": {"type": "string"}},
                    {"name": "tz", "in": "query", "schema": {"type": "string"}},
                ],
                "responses": {**_ok(200, {"type": "object"}), **_errors(422, *_READ)},
            }
        },
        "/schedules/{schedule_id}": {
            "get": {"summary": "One schedule", "parameters": [_SCHEDULE_ID],
                    "responses": {**_ok(200, _SCHEDULE), **_errors(404, *_READ)}},
            "patch": {
                "summary": "Change fields; applied by the running scheduler within a tick",
                "parameters": [_SCHEDULE_ID],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "additionalProperties": False,
                    "properties": {"task": {"type": "string"}, "kwargs": {"type": "object"}, **_schedule_fields()}}}}},
                "responses": {**_ok(200, _SCHEDULE), **_errors(404, 409, *_WRITE)},
            },
            "delete": {"summary": "Delete a schedule and its ledger", "parameters": [_SCHEDULE_ID],
                       "responses": {"204": {"description": "Deleted"}, **_errors(404, *_READ)}},
        },
        "/schedules/{schedule_id}/run": {"post": {
            "summary": "Enqueue an extra run now (recorded in the ledger)", "parameters": [_SCHEDULE_ID],
            "responses": {**_ok(202, {"$ref": "#/components/schemas/Accepted"}, "Enqueued"), **_errors(404, *_READ)}}},
        "/schedules/{schedule_id}/pause": action("Skip slots for some seconds or until a time", pause_body),
        "/schedules/{schedule_id}/resume": action("End a pause", codes=(404, 409)),
        "/schedules/{schedule_id}/enable": action("Turn on"),
        "/schedules/{schedule_id}/disable": action("Turn off"),
        "/schedules/{schedule_id}/reset": action("Return to the declared default", codes=(404, 409)),
        "/schedules/{schedule_id}/runs": {"get": {
            "summary": "The slot ledger, newest first",
            "parameters": [_SCHEDULE_ID,
                           _limit(ledger.CAP), _CURSOR],
            "responses": {**_ok(200, {"type": "object"}), **_errors(404, 422, *_READ)}}},
        "/scheduler": {"get": {"summary": "Leader, standbys, last tick, tick duration and lag",
                               "responses": {**_ok(200, {"type": "object"}), **_errors(*_READ)}}},
        "/scheduler/reload": {"post": {"summary": "Re-sync declared schedules and reconcile all",
                                       "responses": {**_ok(202, {"type": "object"}), **_errors(*_READ)}}},
    }  # fmt: skip


def spec() -> dict[str, Any]:
    """Return the OpenAPI document for /api/v1."""
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "alarmq", "version": __version__, "description": "Jobs and alarms on RQ and Redis."},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": {
            "/health": {
                "get": {
                    "summary": "Redis, workers, scheduler presence and queue depths",
                    "security": [],
                    "responses": {**_ok(200, {"type": "object"}), **_ok(503, {"type": "object"}, "Redis is down")},
                }
            },
            "/openapi.json": {
                "get": {"summary": "This document", "security": [], "responses": _ok(200, {"type": "object"})}
            },
            "/tasks": {
                "get": {
                    "summary": "The registered tasks with their parameter schemas",
                    "responses": {**_ok(200, {"type": "object"}), **_errors(*_READ)},
                }
            },
            "/tasks/{name}": {
                "get": {
                    "summary": "One registered task",
                    "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "responses": {**_ok(200, {"type": "object"}), **_errors(404, *_READ)},
                }
            },
            "/jobs": {
                "post": {
                    "summary": "Enqueue a registered task",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NewJob"}}},
                    },
                    "responses": {
                        **_ok(202, {"$ref": "#/components/schemas/Accepted"}, "Enqueued"),
                        **_errors(*_WRITE),
                    },
                },
                "get": {
                    "summary": "Jobs, newest first, a page at a time",
                    "parameters": [
                        {"name": "status", "in": "query", "schema": {"type": "string", "enum": list(jobs.STATUSES)}},
                        {"name": "task", "in": "query", "schema": {"type": "string"}},
                        _limit(500),
                        _CURSOR,
                    ],
                    "responses": {
                        **_ok(200, {"type": "object", "properties": {"jobs": {"type": "array", "items": _JOB}}}),
                        **_errors(422, *_READ),
                    },
                },
            },
            "/jobs/{job_id}": {
                "get": {
                    "summary": "One job",
                    "parameters": [_JOB_ID],
                    "responses": {**_ok(200, _JOB), **_errors(404, *_READ)},
                },
                "delete": {
                    "summary": "Delete a job that is not running",
                    "parameters": [_JOB_ID],
                    "responses": {"204": {"description": "Deleted"}, **_errors(404, 409, *_READ)},
                },
            },
            "/jobs/{job_id}/cancel": {
                "post": {
                    "summary": "Cancel a waiting job or stop a running one",
                    "parameters": [_JOB_ID],
                    "responses": {**_ok(202, _JOB), **_errors(404, 409, *_READ)},
                }
            },
            "/jobs/{job_id}/requeue": {
                "post": {
                    "summary": "Requeue a failed, stopped or canceled job",
                    "parameters": [_JOB_ID],
                    "responses": {**_ok(202, _JOB), **_errors(404, 409, *_READ)},
                }
            },
            "/events": {
                "get": {
                    "summary": "Recent events, or those after `since`, oldest first",
                    "parameters": [
                        {
                            "name": "since",
                            "in": "query",
                            "schema": {"type": "string", "pattern": events.EVENT_ID_PATTERN},
                        },
                        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
                        {
                            "name": "types",
                            "in": "query",
                            "description": "Comma-separated types or patterns, like alarm.*,job.failed",
                            "schema": {
                                "type": "string",
                                "pattern": r"^[a-z*][a-z0-9_.*]{0,63}(,[a-z*][a-z0-9_.*]{0,63})*$",
                            },
                        },
                    ],
                    "responses": {**_ok(200, {"type": "object"}), **_errors(422, *_READ)},
                }
            },
            "/live": {
                "get": {
                    "summary": "Where the event WebSocket is (same origin /ws, or a side port under waitress)",
                    "responses": {**_ok(200, {"type": "object"}), **_errors(*_READ)},
                }
            },
            **_schedule_paths(),
            **alarm_paths(),
            **channel_paths(),
            **access_paths(),
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
                "NewJob": {"oneOf": [_new_job(t) for t in registry.all_tasks()]},
                "Schedule": {
                    "type": "object",
                    "required": ["id", "task", "kwargs", "enabled", "overridden", "next_fire_times"],
                    "properties": {
                        "id": {"type": "string"},
                        "task": {"type": "string"},
                        "kwargs": {"type": "object"},
                        "overridden": {"type": "array", "items": {"type": "string"}},
                        "source": {"type": "string", "enum": ["api", "code"]},
                        "paused": {"type": "boolean"},
                        "next_fire_times": {"type": "array", "items": {"type": "integer"}},
                        **_schedule_fields(),
                        "interval": {"type": ["integer", "null"]},
                        "cron": {"type": ["string", "null"]},
                        "timeout": {"type": ["integer", "null"]},
                    },
                },
                **CHANNEL_SCHEMA,
                "Accepted": {
                    "type": "object",
                    "required": ["id", "status", "url"],
                    "properties": {"id": {"type": "string"}, "status": {"type": "string"}, "url": {"type": "string"}},
                },
                "Job": {
                    "type": "object",
                    "required": ["id", "task", "kwargs", "status", "result", "error"],
                    "properties": {
                        "id": {"type": "string"},
                        "task": {"type": ["string", "null"]},
                        "kwargs": {"type": ["object", "null"]},
                        "status": {"type": "string"},
                        "result": {},
                        "error": {"type": ["string", "null"]},
                        "traceback": {"type": ["string", "null"]},
                        "queue": {"type": "string"},
                        "origin": {"type": "string"},
                        "source": {"type": ["string", "null"]},
                        "enqueued_at": {"type": ["string", "null"]},
                        "started_at": {"type": ["string", "null"]},
                        "ended_at": {"type": ["string", "null"]},
                    },
                },
            },
        },
    }
    with_forbidden(document["paths"])
    return document
