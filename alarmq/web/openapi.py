"""Describe the API in OpenAPI 3.1; a test checks every route is here and every route here exists."""

from __future__ import annotations

from typing import Any

from alarmq import __version__, events, jobs, registry

_ERROR = {"$ref": "#/components/schemas/Error"}


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        400: "The body is not JSON or not an object",
        401: "No token, or an unknown one",
        404: "No such thing",
        409: "Wrong state for this action",
        413: "Body too large",
        415: "Body is not application/json",
        422: "A field has a wrong value",
        503: "Redis is not reachable",
    }
    return {str(c): {"description": text[c], "content": {"application/json": {"schema": _ERROR}}} for c in codes}


def _ok(code: int, schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {str(code): {"description": description, "content": {"application/json": {"schema": schema}}}}


_JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}
_JOB = {"$ref": "#/components/schemas/Job"}
_READ = (401, 503)
_WRITE = (400, 401, 413, 415, 422, 503)


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


def spec() -> dict[str, Any]:
    """Return the OpenAPI document for /api/v1."""
    return {
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
                        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
                        {
                            "name": "cursor",
                            "in": "query",
                            "description": "The next_cursor of the previous page",
                            "schema": {"type": "string", "pattern": r"^\d{1,12}(\.\d{1,9})?$"},
                        },
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
                    ],
                    "responses": {**_ok(200, {"type": "object"}), **_errors(422, *_READ)},
                }
            },
            "/scheduler": {
                "get": {
                    "summary": "The live scheduler processes",
                    "responses": {**_ok(200, {"type": "object"}), **_errors(*_READ)},
                }
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
                "NewJob": {"oneOf": [_new_job(t) for t in registry.all_tasks()]},
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
