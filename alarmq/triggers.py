"""Compute when a schedule fires: fixed intervals, or 5-field cron in an IANA time zone.

Pure functions of their inputs; every "now" is passed in as Unix seconds.
Fire times are whole Unix seconds in UTC; rq-scheduler's scores are too.

Time zones and DST, the way cron does it: a cron time that falls in a
spring-forward gap fires once, shifted forward by the gap (02:30 in a skipped
hour fires at 03:30); a time in a fall-back hour that repeats fires once, at
its first occurrence, unless the expression runs every hour (hour field `*`),
which keeps firing through both passes so "every 30 minutes" stays every 30
real minutes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, croniter

from alarmq.errors import Invalid

MAX_INTERVAL = 366 * 86400
MAX_SHIFT = timedelta(hours=3)  # more than any zone's DST shift (Lord Howe 30 min, most 1 h, a few 2 h)
_EVERY = re.compile(r"^(\d+)\s*(s|m|h|d)?$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


@dataclass(frozen=True)
class Trigger:
    """When a schedule fires: every `interval` seconds from `anchor`, or on `cron` in `timezone`."""

    interval: int | None = None
    cron: str | None = None
    timezone: str = "UTC"

    def describe(self) -> str:
        """Return the trigger in words, for lists and logs."""
        if self.interval is not None:
            return f"every {self.interval}s"
        return f"cron {self.cron} ({self.timezone})"


def parse_every(value: object) -> int:
    """Return seconds for `30`, `"30s"`, `"5m"`, `"1h"` or `"2d"`, or raise Invalid."""
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    elif isinstance(value, str) and (m := _EVERY.fullmatch(value.strip())):
        seconds = int(m.group(1)) * _UNITS[m.group(2)]
    else:
        raise Invalid(f"every must be seconds or a duration like '30s', '5m', '1h', got {value!r}")
    return validate_interval(seconds)


def validate_interval(value: object) -> int:
    """Return `value` as whole seconds from 1 up to a year, or raise Invalid."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_INTERVAL:
        raise Invalid(f"interval must be a whole number of seconds from 1 to {MAX_INTERVAL}, got {value!r}")
    return value


def validate_timezone(value: object) -> ZoneInfo:
    """Return the zone named `value`, or raise Invalid saying what a zone name looks like."""
    if not isinstance(value, str) or not value or len(value) > 64 or value.startswith(("/", ".")) or ".." in value:
        raise Invalid(f"timezone must be an IANA name like 'Europe/Warsaw' or 'UTC', got {value!r}")
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid(f"timezone {value!r} is not a known IANA zone (like 'Europe/Warsaw' or 'UTC')") from None


def validate_cron(value: object) -> str:
    """Return a 5-field cron expression, or raise Invalid with what is wrong with it."""
    if not isinstance(value, str) or len(value) > 200:
        raise Invalid(f"cron must be a string of 5 fields like '0 3 * * *', got {value!r}")
    expr = " ".join(value.split())
    if len(expr.split(" ")) != 5:
        raise Invalid(f"cron must have 5 fields (minute hour day month weekday), got {len(expr.split())}: {value!r}")
    try:
        croniter(expr, datetime(2026, 1, 1)).get_next(datetime)
    except (CroniterBadCronError, ValueError, KeyError) as exc:
        raise Invalid(f"cron {value!r} is not valid: {exc}") from None
    return expr


def trigger_of(interval: object = None, cron: object = None, timezone: object = None) -> Trigger:
    """Return a validated Trigger from API-style fields (exactly one of interval or cron)."""
    if (interval is None) == (cron is None):
        raise Invalid("give exactly one of interval (seconds) or cron (5 fields)")
    if interval is not None:
        if timezone not in (None, "UTC"):
            validate_timezone(timezone)  # still refuse nonsense, though an interval has no zone
        return Trigger(interval=validate_interval(interval), timezone=str(timezone or "UTC"))
    zone = "UTC" if timezone is None else timezone
    validate_timezone(zone)
    return Trigger(cron=validate_cron(cron), timezone=str(zone))


def next_fire(trigger: Trigger, after: float, anchor: int = 0) -> int:
    """Return the first fire time strictly after `after` (Unix seconds)."""
    if trigger.interval is not None:
        step = trigger.interval
        k = int((after - anchor) // step) + 1
        return anchor + max(k, 0) * step if after >= anchor else anchor
    assert trigger.cron is not None
    return _next_cron(trigger.cron, ZoneInfo(trigger.timezone), after)


def fires_between(trigger: Trigger, after: float, until: float, anchor: int = 0, limit: int = 1000) -> list[int]:
    """Return the fire times in (after, until], at most `limit` of them (the latest ones)."""
    found: list[int] = []
    t = next_fire(trigger, after, anchor)
    while t <= until:
        found.append(t)
        if len(found) > limit:
            found.pop(0)
        t = next_fire(trigger, t, anchor)
    return found


def preview(trigger: Trigger, now: float, count: int = 10, anchor: int | None = None) -> list[int]:
    """Return the next `count` fire times after `now`."""
    base = int(now) if anchor is None else anchor
    times: list[int] = []
    t = now
    for _ in range(count):
        t = next_fire(trigger, t, base)
        times.append(int(t))
    return times


def _next_cron(expr: str, zone: ZoneInfo, after: float) -> int:
    hourly = expr.split(" ")[1] == "*"
    # Walk wall-clock times; start early so a repeated (fall-back) hour that
    # `after` sits in is not skipped. The second pass of a repeated hour maps
    # to a later instant than wall times after it, so keep the earliest
    # instant seen until no later wall time can beat it (offsets differ by
    # less than MAX_SHIFT).
    wall = datetime.fromtimestamp(after, zone).replace(tzinfo=None) - MAX_SHIFT
    it = croniter(expr, wall)
    best: int | None = None
    for _ in range(100_000):
        candidate: datetime = it.get_next(datetime)
        instants = _instants(candidate, zone, hourly)
        if best is not None and instants[0] - MAX_SHIFT.total_seconds() > best:
            return best
        for instant in instants:
            if instant > after and (best is None or instant < best):
                best = instant
    raise Invalid(f"cron {expr!r} never fires")  # pragma: no cover - every valid 5-field cron fires


def _instants(wall: datetime, zone: ZoneInfo, both_folds: bool) -> list[int]:
    first = int(wall.replace(tzinfo=zone, fold=0).timestamp())
    second = int(wall.replace(tzinfo=zone, fold=1).timestamp())
    if first == second:
        return [first]
    if second < first:  # a gap: the wall time does not exist; fold=0 maps it past the gap
        return [first]
    return [first, second] if both_folds else [first]


def future_time(value: object, now: float, longest: float) -> float | None:
    """Return Unix seconds for an ISO 8601 time with a zone (or Unix seconds) in (now, now + longest], else None."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        at = float(value)
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        if parsed.tzinfo is None:
            return None  # a time without a zone means a different instant on every host
        at = parsed.timestamp()
    else:
        return None
    return at if now < at <= now + longest else None


def to_datetime(epoch: float) -> datetime:
    """Return an aware UTC datetime for Unix seconds (rq-scheduler reads naive ones as UTC)."""
    return datetime.fromtimestamp(epoch, UTC)
