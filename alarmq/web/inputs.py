"""Read request bodies and query arguments, refusing bad ones with a message that says what to fix."""

from __future__ import annotations

import math
from typing import Any

from flask import request

from alarmq.errors import BadRequest, Invalid, UnsupportedMediaType


def json_body(optional: bool = False) -> dict[str, Any]:
    """Return the request's JSON object, or raise an error that says what is wrong with it."""
    if optional and not request.get_data(cache=True):
        return {}
    if request.mimetype != "application/json":
        raise UnsupportedMediaType("send the body as JSON with 'Content-Type: application/json'")
    body = request.get_json(silent=True)
    if body is None:
        raise BadRequest("the body is not valid JSON")
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def int_arg(name: str, default: int, low: int, high: int) -> int:
    """Return query argument `name` as a whole number in [low, high], or `default` when absent."""
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise Invalid(f"{name} must be a whole number from {low} to {high}, got {raw!r}") from None
    if not low <= value <= high:
        raise Invalid(f"{name} must be a whole number from {low} to {high}, got {raw!r}")
    return value


def cursor_arg() -> float | None:
    """Return the `cursor` query argument (a previous page's next_cursor), if given."""
    raw = request.args.get("cursor")
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise Invalid("cursor must be the next_cursor of a previous page")
    return value
