"""The `alarmq schedules` commands: list, inspect, create, change, pause and run schedules from a shell.

They do what /api/v1/schedules does, through the same domain functions, and
fail the same way: one `Error: …` line and the exit codes of `alarmq.cli`.
Importing this module adds the group to `alarmq.cli.main`.
"""

from __future__ import annotations

import math
import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import click

from alarmq import registry, schedules, triggers
from alarmq.cli import F, _echo_json, _iso, _parse_kwargs, _redis, _settings, audited, main, snapshot, translate_errors
from alarmq.connection import Redis
from alarmq.errors import Invalid
from alarmq.settings import Settings

MAX_PAUSE = 366 * 86400
PREVIEW_COUNT = 10


def _connect() -> tuple[Settings, Redis]:
    """Load the task modules (specs name tasks and their queues) and connect to Redis."""
    settings = _settings()
    registry.load(settings.task_modules)
    return settings, _redis(settings)


def _trigger_fields(every: str | None, interval: int | None, cron: str | None) -> dict[str, Any]:
    """Return the spec's interval or cron from at most one of --every, --interval and --cron."""
    given = [
        name for name, value in (("--every", every), ("--interval", interval), ("--cron", cron)) if value is not None
    ]
    if len(given) > 1:
        raise Invalid(f"give one of --every, --interval or --cron, not {' and '.join(given)}")
    if every is not None:
        return {"interval": triggers.parse_every(every)}
    if interval is not None:
        return {"interval": interval}
    if cron is not None:
        return {"cron": cron}
    return {}


def _given(**options: Any) -> dict[str, Any]:
    return {name: value for name, value in options.items() if value is not None}


def _next_fire(schedule: dict[str, Any], now: float) -> int | None:
    """Return the next slot that will run: none while disabled, the first one after a pause."""
    if not schedule["enabled"]:
        return None
    after = now
    if schedule["paused_until"] and schedule["paused_until"] > now:
        after = math.ceil(schedule["paused_until"]) - 1  # slots before the pause's end are skipped
    return triggers.next_fire(schedules.trigger(schedule), after, schedule["anchor"] or int(now))


def _state(schedule: dict[str, Any], now: float) -> str:
    if not schedule["enabled"]:
        return "disabled"
    if schedule["paused_until"] and schedule["paused_until"] > now:
        return f"paused until {_iso(schedule['paused_until'])}"
    return "enabled"


def _summary(schedule: dict[str, Any], now: float) -> str:
    nxt = _next_fire(schedule, now)
    state = _state(schedule, now)
    return f"{schedules.trigger(schedule).describe()}, {state}, next {_iso(nxt)}"


SPEC_OPTIONS = (
    click.option("--every", metavar="DURATION", help="Fire every DURATION, like 30s, 5m, 1h or 2d."),
    click.option("--interval", type=int, metavar="SECONDS", help="Fire every SECONDS seconds."),
    click.option("--cron", metavar="EXPR", help="Fire on a 5-field cron expression, like '0 3 * * *'."),
    click.option("--tz", metavar="ZONE", help="IANA time zone of --cron, like Europe/Warsaw (default: UTC)."),
    click.option("--queue", help="Queue the runs go to (default: scheduled)."),
    click.option("--timeout", type=int, metavar="SECONDS", help="Seconds a run may take."),
    click.option("--misfire", metavar="skip|once", help="After a pause or outage: skip missed slots, or run once."),
    click.option("--overlap", metavar="skip|allow", help="When the previous run is still going: skip, or allow."),
    click.option("--description", metavar="TEXT", help="What the schedule is for."),
)


def with_spec_options(fn: F) -> F:
    """Add the trigger and spec options shared by `add` and `set`."""
    for option in reversed(SPEC_OPTIONS):
        fn = option(fn)
    return fn


@main.group(name="schedules")
def schedules_cmd() -> None:
    """List, inspect, create, change, pause and run schedules."""


@schedules_cmd.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, as the API shows schedules.")
@translate_errors
def list_cmd(as_json: bool) -> None:
    """List schedules: trigger, state, next fire, overrides."""
    _, conn = _connect()
    now = time.time()
    found = schedules.list_all(conn)
    if as_json:
        _echo_json([schedules.describe(s, now) for s in found])
        return
    rows = []
    for s in found:
        nxt = _next_fire(s, now)
        marker = f"overrides: {', '.join(s['overridden'])}" if s["overridden"] else ""
        rows.append(
            (
                s["id"],
                schedules.trigger(s).describe(),
                _state(s, now),
                f"next {_iso(nxt)}",
                marker,
            )
        )
    widths = [max((len(row[i]) for row in rows), default=0) for i in range(4)]
    for row in rows:
        click.echo("  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[4]]).rstrip())


@schedules_cmd.command()
@click.argument("schedule_id", metavar="ID")
@translate_errors
def show(schedule_id: str) -> None:
    """Show schedule ID as JSON."""
    _, conn = _connect()
    _echo_json(schedules.describe(schedules.load(conn, schedule_id), time.time()))


@schedules_cmd.command()
@click.argument("schedule_id", metavar="ID")
@click.argument("task")
@click.argument("args", nargs=-1, metavar="[KEY=VALUE]...")
@with_spec_options
@click.option("--disabled", is_flag=True, help="Create it turned off.")
@translate_errors
def add(
    schedule_id: str, task: str, args: tuple[str, ...], every: str | None, interval: int | None, cron: str | None,
    tz: str | None, queue: str | None, timeout: int | None, misfire: str | None, overlap: str | None,
    description: str | None, disabled: bool,
) -> None:  # fmt: skip
    """Create schedule ID running TASK with KEY=VALUE args."""
    _, conn = _connect()
    trigger = _trigger_fields(every, interval, cron)
    if not trigger:
        raise Invalid("give one of --every DURATION, --interval SECONDS or --cron EXPR")
    data = {
        "id": schedule_id,
        "task": task,
        "kwargs": _parse_kwargs(registry.get(task), args),
        **trigger,
        **_given(timezone=tz, queue=queue, timeout=timeout, misfire=misfire, overlap=overlap, description=description),
    }
    if disabled:
        data["enabled"] = False
    now = time.time()
    created = schedules.create(conn, data, now)
    audited(conn, "schedule.create", f"schedule:{schedule_id}", None, snapshot(conn, f"schedule:{schedule_id}"))
    click.echo(f"{schedule_id}: created; {_summary(created, now)}")


@schedules_cmd.command(name="set")
@click.argument("schedule_id", metavar="ID")
@click.argument("args", nargs=-1, metavar="[KEY=VALUE]...")
@with_spec_options
@translate_errors
def set_cmd(
    schedule_id: str, args: tuple[str, ...], every: str | None, interval: int | None, cron: str | None,
    tz: str | None, queue: str | None, timeout: int | None, misfire: str | None, overlap: str | None,
    description: str | None,
) -> None:  # fmt: skip
    """Change fields of ID; KEY=VALUE replaces all args."""
    _, conn = _connect()
    changes = {
        **_trigger_fields(every, interval, cron),
        **_given(timezone=tz, queue=queue, timeout=timeout, misfire=misfire, overlap=overlap, description=description),
    }
    if args:
        changes["kwargs"] = _parse_kwargs(registry.get(schedules.load(conn, schedule_id)["task"]), args)
    if not changes:
        raise Invalid("nothing to change; give an option such as --cron or --every, or key=value arguments")
    now = time.time()
    before = snapshot(conn, f"schedule:{schedule_id}")
    changed = schedules.patch(conn, schedule_id, changes, now)
    audited(conn, "schedule.update", f"schedule:{schedule_id}", before, snapshot(conn, f"schedule:{schedule_id}"))
    click.echo(f"{schedule_id}: updated; {_summary(changed, now)}")


@schedules_cmd.command()
@click.argument("schedule_id", metavar="ID")
@translate_errors
def enable(schedule_id: str) -> None:
    """Turn schedule ID on."""
    _, conn = _connect()
    now = time.time()
    before = snapshot(conn, f"schedule:{schedule_id}")
    changed = schedules.patch(conn, schedule_id, {"enabled": True}, now)
    audited(conn, "schedule.enable", f"schedule:{schedule_id}", before, snapshot(conn, f"schedule:{schedule_id}"))
    click.echo(f"{schedule_id}: {_summary(changed, now)}")


@schedules_cmd.command()
@click.argument("schedule_id", metavar="ID")
@translate_errors
def disable(schedule_id: str) -> None:
    """Turn schedule ID off (its slots are skipped)."""
    _, conn = _connect()
    now = time.time()
    before = snapshot(conn, f"schedule:{schedule_id}")
    changed = schedules.patch(conn, schedule_id, {"enabled": False}, now)
    audited(conn, "schedule.disable", f"schedule:{schedule_id}", before, snapshot(conn, f"schedule:{schedule_id}"))
    click.echo(f"{schedule_id}: {_summary(changed, now)}")


def _pause_end(duration: str | None, until: str | None, now: float) -> float:
    """Return when a pause ends, from exactly one of --for and --until."""
    if (duration is None) == (until is None):
        raise Invalid("give one of --for DURATION (like 10m) or --until TIME (ISO 8601 with a zone)")
    if duration is not None:
        try:
            return now + triggers.parse_every(duration)
        except Invalid:
            raise Invalid(
                f"--for must be a duration like 30s, 10m, 2h or 1d (at most 366d), got {duration!r}"
            ) from None
    at = triggers.future_time(until, now, MAX_PAUSE)
    if at is None:
        raise Invalid(
            f"--until must be a future time with a zone, at most 366 days ahead, like '2026-12-05T08:00:00+01:00', "
            f"got {until!r}"
        )
    return at


@schedules_cmd.command()
@click.argument("schedule_id", metavar="ID")
@click.option("--for", "duration", metavar="DURATION", help="Pause for DURATION, like 30s, 10m, 2h or 1d.")
@click.option("--until", metavar="TIME", help="Pause until TIME, ISO 8601 with a zone, like 2026-12-05T08:00+01:00.")
@translate_errors
def pause(schedule_id: str, duration: str | None, until: str | None) -> None:
    """Skip the slots of schedule ID for a while."""
    _, conn = _connect()
    now = time.time()
    end = _pause_end(duration, until, now)
    before = snapshot(conn, f"schedule:{schedule_id}")
    paused = schedules.pause(conn, schedule_id, end, now)
    audited(conn, "schedule.pause", f"schedule:{schedule_id}", before, snapshot(conn, f"schedule:{schedule_id}"))
    click.echo(f"{schedule_id}: {_summary(paused, now)}")


@schedules_cmd.command()
@click.argument("schedule_id", metavar="ID")
@translate_errors
def resume(schedule_id: str) -> None:
    """End the pause of schedule ID now."""
    _, conn = _connect()
    now = time.time()
    before = snapshot(conn, f"schedule:{schedule_id}")
    resumed = schedules.resume(conn, schedule_id, now)
    audited(conn, "schedule.resume", f"schedule:{schedule_id}", before, snapshot(conn, f"schedule:{schedule_id}"))
    click.echo(f"{schedule_id}: {_summary(resumed, now)}")


@schedules_cmd.command()
@click.argument("schedule_id", metavar="ID")
@translate_errors
def reset(schedule_id: str) -> None:
    """Drop every override; return ID to its code."""
    _, conn = _connect()
    now = time.time()
    before = snapshot(conn, f"schedule:{schedule_id}")
    done = schedules.reset(conn, schedule_id, now)
    audited(conn, "schedule.reset", f"schedule:{schedule_id}", before, snapshot(conn, f"schedule:{schedule_id}"))
    click.echo(f"{schedule_id}: reset; {_summary(done, now)}")


@schedules_cmd.command(name="rm")
@click.argument("schedule_id", metavar="ID")
@translate_errors
def rm_cmd(schedule_id: str) -> None:
    """Delete schedule ID and its run history."""
    _, conn = _connect()
    before = snapshot(conn, f"schedule:{schedule_id}")
    schedules.delete(conn, schedule_id)
    audited(conn, "schedule.delete", f"schedule:{schedule_id}", before, None)
    click.echo(f"{schedule_id}: deleted")


@schedules_cmd.command(name="run")
@click.argument("schedule_id", metavar="ID")
@translate_errors
def run_cmd(schedule_id: str) -> None:
    """Run schedule ID once now; print the job id."""
    from alarmq import runs

    settings, conn = _connect()
    before = snapshot(conn, f"schedule:{schedule_id}")
    job = runs.enqueue_now(conn, settings, schedules.load(conn, schedule_id), time.time(), "run now")
    audited(conn, "schedule.run", f"schedule:{schedule_id}", before, snapshot(conn, f"schedule:{schedule_id}"))
    click.echo(job.id)


@schedules_cmd.command(name="runs")
@click.argument("schedule_id", metavar="ID")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 500))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@translate_errors
def runs_cmd(schedule_id: str, limit: int, as_json: bool) -> None:
    """List the runs of schedule ID, newest first."""
    from alarmq import ledger

    _, conn = _connect()
    schedules.load(conn, schedule_id)
    entries, _ = ledger.read(conn, schedule_id, limit=limit)
    if as_json:
        _echo_json(entries)
        return
    for e in entries:
        detail = "  ".join(str(e[k]) for k in ("job_id", "reason", "error") if e.get(k))
        click.echo(f"{e['time']}  {e['outcome']:<8}  {detail}".rstrip())


@schedules_cmd.command()
@click.option("--cron", metavar="EXPR", help="A 5-field cron expression, like '0 3 * * *'.")
@click.option("--tz", metavar="ZONE", help="IANA time zone of --cron, like Europe/Warsaw (default: UTC).")
@click.option("--every", metavar="DURATION", help="An interval, like 30s, 5m or 1h.")
@translate_errors
def preview(cron: str | None, tz: str | None, every: str | None) -> None:
    """Print the next 10 fire times, UTC and local."""
    fields = _trigger_fields(every, None, cron)
    if not fields:
        raise Invalid("give one of --cron EXPR or --every DURATION")
    trigger = triggers.trigger_of(fields.get("interval"), fields.get("cron"), tz)
    zone = ZoneInfo(trigger.timezone)
    for t in triggers.preview(trigger, time.time(), PREVIEW_COUNT):
        click.echo(f"{_iso(t)}  {datetime.fromtimestamp(t, zone).isoformat()}")
