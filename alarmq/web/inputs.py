"""Read request bodies and query arguments, refusing bad ones with a message that says what to fix."""

from __future__ import annotations

import math
from typing import Any

from flask import request

from alarmq import triggers
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


def until(body: dict[str, Any], now: float, longest: float) -> float:
    """Return the end time of `{"seconds": n}` or `{"until": ISO 8601 | Unix seconds}`, or raise Invalid."""
    if "seconds" in body:
        seconds = body["seconds"]
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds <= longest:
            raise Invalid(f"seconds must be a number from 1 to {longest:g}, got {seconds!r}")
        return now + seconds
    end = body.get("until")
    at = triggers.future_time(end, now, longest)
    if at is not None:
        return at
    raise Invalid(f"until must be a future time with a zone, like '2026-12-05T08:00:00+01:00', got {end!r}")
