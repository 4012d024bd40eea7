"""Describe the alarm, heartbeat, metric and channel routes for the OpenAPI document."""

from __future__ import annotations

from typing import Any

from alarmq import channels, monitors
from alarmq.web.openapi_common import _READ, _WRITE, _errors, _limit, _ok

_ALARM_ID = {"name": "alarm_id", "in": "path", "required": True, "schema": {"type": "string"}}
_OBJECT = {"type": "object"}


def alarm_paths() -> dict[str, Any]:
    """Return the OpenAPI paths of alarms, heartbeats and metrics."""
    body = {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["id", "kind"],
        "properties": {"id": {"type": "string"}, "name": {"type": "string"},
                       "kind": {"type": "string", "enum": list(monitors.KINDS)},
                       "interval": {"type": "integer", "minimum": 1, "maximum": 86400}, "config": _OBJECT,
                       "failures_to_fire": {"type": "integer", "minimum": 1},
                       "recoveries_to_resolve": {"type": "integer", "minimum": 1},
                       "keep_firing_for": {"type": "number", "minimum": 0},
                       "channels": {"type": "array", "items": {"type": "string"}},
                       "repeat_every": {"type": "integer", "minimum": 0}, "enabled": {"type": "boolean"},
                       "description": {"type": "string"}}}}}}  # fmt: skip
    paths: dict[str, Any] = {
        "/alarms": {
            "get": {"summary": "Every alarm with its state", "responses": {**_ok(200, _OBJECT), **_errors(*_READ)}},
            "post": {"summary": "Create an alarm (a heartbeat answers with its ping_url)", "requestBody": body,
                     "responses": {**_ok(201, _OBJECT, "Created"), **_errors(409, *_WRITE)}},
        },
        "/alarms/{alarm_id}": {
            "get": {"summary": "One alarm: state, last_result, since, uptime", "parameters": [_ALARM_ID],
                    "responses": {**_ok(200, _OBJECT), **_errors(404, *_READ)}},
            "patch": {"summary": "Change fields", "parameters": [_ALARM_ID],
                      "requestBody": {"required": True, "content": {"application/json": {"schema": _OBJECT}}},
                      "responses": {**_ok(200, _OBJECT), **_errors(404, 409, *_WRITE)}},
            "delete": {"summary": "Delete an alarm and its history", "parameters": [_ALARM_ID],
                       "responses": {"204": {"description": "Deleted"}, **_errors(404, *_READ)}},
        },
    }  # fmt: skip
    for action in ("ack", "silence", "unsilence", "check", "enable", "disable"):
        op: dict[str, Any] = {"summary": f"{action.capitalize()} the alarm", "parameters": [_ALARM_ID],
                              "responses": {**_ok(202 if action == "check" else 200, _OBJECT),
                                            **_errors(404, 409, 422, *_READ)}}  # fmt: skip
        if action == "silence":
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _OBJECT}}}
            op["responses"].update(_errors(400, 415))
        paths[f"/alarms/{{alarm_id}}/{action}"] = {"post": op}
    for log in ("results", "flips", "notifications"):
        paths[f"/alarms/{{alarm_id}}/{log}"] = {"get": {
            "summary": f"Recent {log}, newest first", "parameters": [_ALARM_ID, _limit(1000)],
            "responses": {**_ok(200, _OBJECT), **_errors(404, 422, *_READ)}}}  # fmt: skip
    token = {"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}
    for path, what in (("/heartbeats/{token}", "a ping"), ("/heartbeats/{token}/fail", "a failure")):
        op = {"summary": f"Record {what} (no token: the URL is the secret)", "security": [], "parameters": [token],
              "responses": {**_ok(200, _OBJECT), **_errors(404, 503)}}  # fmt: skip
        paths[path] = {"get": op, "post": op}
    paths["/metrics/{name}"] = {"post": {
        "summary": "Push a metric sample {value, ts?}; threshold alarms on it are judged at once",
        "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["value"], "additionalProperties": False,
            "properties": {"value": {"type": "number"}, "ts": {"type": "number"}}}}}},
        "responses": {**_ok(202, _OBJECT), **_errors(*_WRITE)}}}  # fmt: skip
    return paths


_CHANNEL_ID = {"name": "channel_id", "in": "path", "required": True, "schema": {"type": "string"}}
_CHANNEL = {"$ref": "#/components/schemas/Channel"}


def _channel_configs() -> dict[str, dict[str, Any]]:
    timeout = {
        "type": ["integer", "null"],
        "minimum": 1,
        "maximum": channels.MAX_TIMEOUT,
        "description": "Seconds (default 10)",
    }
    address = {"type": "string", "format": "email", "pattern": f"^{channels.ADDRESS_PATTERN}$", "maxLength": 254}
    return {
        "webhook": {
            "type": "object",
            "required": ["url"],
            "additionalProperties": False,
            "properties": {
                "url": {"type": "string", "pattern": "^https?://[^/\\s]", "maxLength": 2048},
                "headers": {"type": ["object", "null"], "maxProperties": channels.MAX_HEADERS,
                            "propertyNames": {"pattern": "^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$"},
                            "additionalProperties": {"type": "string", "maxLength": 4096, "pattern": "^[ -~]*$"}},
                "template": {"description": "Any JSON; strings may hold {alarm_id} {alarm_name} {state} {kind} "
                                            "{reason} {since} {value} {message} {url} {subject} {text}"},
                "timeout": timeout,
            },
        },
        "email": {
            "type": "object",
            "required": ["host", "sender", "to"],
            "additionalProperties": False,
            "dependentRequired": {"username": ["password"], "password": ["username"]},
            "properties": {
                "host": {"type": "string", "pattern": "^[A-Za-z0-9.:\\[\\]_-]{1,253}$"},
                "port": {"type": ["integer", "null"], "minimum": 1, "maximum": 65535,
                         "description": "Default 465 with ssl, 587 with starttls, else 25"},
                "starttls": {"type": ["boolean", "null"]},
                "ssl": {"type": ["boolean", "null"], "description": "SMTPS; excludes starttls"},
                "username": {"type": ["string", "null"], "minLength": 1, "maxLength": 512},
                "password": {"type": ["string", "null"], "minLength": 1, "maxLength": 512,
                             "description": "Write only; shown as \"***\", which keeps it"},
                "sender": address,
                "to": {"type": "array", "items": address, "minItems": 1, "maxItems": channels.MAX_RECIPIENTS},
                "timeout": timeout,
            },
        },
    }  # fmt: skip


def _new_channel(kind: str, config: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "title": kind,
        "required": ["id", "kind", "config"],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$"},
            "kind": {"const": kind},
            "config": config,
            "description": {"type": "string", "maxLength": 500},
        },
    }


def channel_paths() -> dict[str, Any]:
    """Return the OpenAPI paths of notification channels."""
    configs = _channel_configs()
    return {
        "/channels": {
            "get": {"summary": "Every notification channel, secrets hidden",
                    "responses": {**_ok(200, {"type": "object", "properties": {
                        "channels": {"type": "array", "items": _CHANNEL}}}), **_errors(*_READ)}},
            "post": {
                "summary": "Create a webhook or email channel",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "oneOf": [_new_channel(k, c) for k, c in configs.items()]}}}},
                "responses": {**_ok(201, _CHANNEL, "Created"), **_errors(409, *_WRITE)},
            },
        },
        "/channels/{channel_id}": {
            "get": {"summary": "One channel, secrets hidden", "parameters": [_CHANNEL_ID],
                    "responses": {**_ok(200, _CHANNEL), **_errors(404, *_READ)}},
            "patch": {
                "summary": "Change fields; config is merged key by key (null removes one) unless kind changes",
                "parameters": [_CHANNEL_ID],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "additionalProperties": False,
                    "properties": {"kind": {"type": "string", "enum": list(channels.KINDS)},
                                   "config": {"anyOf": [{k: v for k, v in c.items() if k != "required"}
                                                        for c in configs.values()]},
                                   "description": {"type": "string", "maxLength": 500}}}}}},
                "responses": {**_ok(200, _CHANNEL), **_errors(404, 409, *_WRITE)},
            },
            "delete": {"summary": "Delete a channel", "parameters": [_CHANNEL_ID],
                       "responses": {"204": {"description": "Deleted"}, **_errors(404, *_READ)}},
        },
        "/channels/{channel_id}/test": {"post": {
            "summary": "Queue one test message (no retries; the job shows the outcome)", "parameters": [_CHANNEL_ID],
            "responses": {**_ok(202, {"$ref": "#/components/schemas/Accepted"}, "Enqueued"), **_errors(404, *_READ)}}},
    }  # fmt: skip


CHANNEL_SCHEMA = {
    "Channel": {
        "type": "object",
        "required": ["id", "kind", "config", "description", "version"],
        "properties": {
            "id": {"type": "string"},
            "kind": {"type": "string", "enum": ["webhook", "email"]},
            "config": {"type": "object"},
            "description": {"type": "string"},
            "version": {"type": "integer"},
            "created_at": {"type": ["number", "null"]},
            "updated_at": {"type": ["number", "null"]},
        },
    },
}
