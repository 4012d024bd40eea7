"""Describe the session, token and audit routes, and the 403 every change can answer, for the OpenAPI document."""

from __future__ import annotations

from typing import Any

from alarmq import audit, auth
from alarmq.web.openapi_common import _READ, _WRITE, _errors, _limit, _ok

_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
_TOKEN: dict[str, Any] = {
    "type": "object",
    "required": ["name", "role", "created_at", "last_used"],
    "properties": {
        "name": {"type": "string"},
        "role": {"type": "string", "enum": list(auth.ROLES)},
        "created_at": {"type": "number"},
        "last_used": {"type": ["number", "null"]},
    },
}
_ENTRY: dict[str, Any] = {
    "type": "object",
    "required": ["id", "ts", "who", "via", "action", "target", "before", "after", "reason"],
    "properties": {
        "id": {"type": "string"},
        "ts": {"type": "number"},
        "who": {"type": "string"},
        "via": {"type": "string", "enum": list(audit.VIAS)},
        "action": {"type": "string", "description": "like schedule.update, job.enqueue, token.revoke"},
        "target": {"type": "string", "description": "kind:id, like schedule:nightly"},
        "before": {"type": ["object", "null"]},
        "after": {"type": ["object", "null"]},
        "reason": {"type": ["string", "null"]},
        "request": {"type": "object"},
    },
}
_ADMIN = "Needs the admin role."


def access_paths() -> dict[str, Any]:
    """Return the OpenAPI paths of /session, /tokens and /audit."""
    return {
        "/session": {"get": {
            "summary": "Who this request is from; with the login cookie, also the CSRF token changes must send",
            "responses": {**_ok(200, {"type": "object", "required": ["name", "role", "via", "csrf_token"],
                                      "properties": {"name": {"type": "string"},
                                                     "role": {"type": "string", "enum": list(auth.ROLES)},
                                                     "via": {"type": "string", "enum": ["bearer", "basic", "cookie"]},
                                                     "csrf_token": {"type": ["string", "null"]}}}),
                          **_errors(*_READ)}}},
        "/tokens": {
            "get": {"summary": "The named tokens: name, role, created, last used (never a secret)",
                    "description": _ADMIN,
                    "responses": {**_ok(200, {"type": "object", "properties": {
                        "tokens": {"type": "array", "items": _TOKEN}}}), **_errors(403, *_READ)}},
            "post": {
                "summary": "Create a named token; the answer holds its secret, shown this once",
                "description": _ADMIN,
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["name", "role"], "additionalProperties": False,
                    "properties": {"name": {"type": "string", "pattern": f"^{auth.NAME_RE.pattern}$",
                                            "not": {"const": auth.BOOTSTRAP}},
                                   "role": {"type": "string", "enum": list(auth.ROLES)}}}}}},
                "responses": {**_ok(201, {**_TOKEN, "required": [*_TOKEN["required"], "token"],
                                          "properties": {**_TOKEN["properties"], "token": {"type": "string"}}},
                                    "Created"),
                              **_errors(403, 409, *_WRITE)},
            },
        },
        "/tokens/{name}": {
            "get": {"summary": "One named token", "description": _ADMIN, "parameters": [_NAME],
                    "responses": {**_ok(200, _TOKEN), **_errors(403, 404, *_READ)}},
            "delete": {"summary": "Revoke a token: its requests and login sessions are refused from now on",
                       "description": _ADMIN, "parameters": [_NAME],
                       "responses": {"204": {"description": "Revoked"}, **_errors(403, 404, *_READ)}},
        },
        "/audit": {"get": {
            "summary": "Every change made through the API, the CLI or the page, newest first",
            "parameters": [_limit(500), {"name": "cursor", "in": "query",
                                         "description": "The next_cursor of the previous page",
                                         "schema": {"type": "string", "pattern": audit.ENTRY_ID_PATTERN}}],
            "responses": {**_ok(200, {"type": "object", "required": ["entries", "next_cursor"], "properties": {
                "entries": {"type": "array", "items": _ENTRY}, "next_cursor": {"type": ["string", "null"]}}}),
                **_errors(422, *_READ)}}},
    }  # fmt: skip


def with_forbidden(paths: dict[str, Any]) -> dict[str, Any]:
    """Add the 403 (the token's role may not do this) to every operation that changes something."""
    for operations in paths.values():
        for method, op in operations.items():
            if method != "get" and op.get("security") != []:
                op["responses"].setdefault("403", _errors(403)["403"])
    return paths
