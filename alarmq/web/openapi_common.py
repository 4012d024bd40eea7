"""Build the pieces every part of the OpenAPI document shares: responses, errors, paging."""

from __future__ import annotations

from typing import Any

_ERROR = {"$ref": "#/components/schemas/Error"}


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        400: "The body is not JSON or not an object",
        401: "No token, or an unknown one",
        403: "The token's role may not do this, or a cookie request lacks its CSRF token",
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


_CURSOR = {
    "name": "cursor",
    "in": "query",
    "description": "The next_cursor of the previous page",
    "schema": {"type": "string", "pattern": r"^\d{1,12}(\.\d{1,9})?$"},
}


def _limit(high: int) -> dict[str, Any]:
    return {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": high}}


_READ = (401, 503)
_WRITE = (400, 401, 413, 415, 422, 503)
