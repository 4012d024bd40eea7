"""The `alarmq alarms` commands: list, inspect, create, change, silence and check alarms from a shell.

They do what /api/v1/alarms does, through the same domain functions, and fail
the same way: one `Error: …` line and the exit codes of `alarmq.cli`. Usage
mistakes (a missing argument, a number that is not one) are one line too.
Importing this module adds the group to `alarmq.cli.main`.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

import click

from alarmq import engine, keys, monitors, registry, triggers
from alarmq.cli import CLIError, F, _echo_json, _iso, _redis, _settings, audited, main, snapshot, translate_errors
from alarmq.cli_schedules import _pause_end
from alarmq.connection import Redis
from alarmq.errors import BadRequest, Invalid
from alarmq.settings import Settings

LOGS: dict[str, Callable[[str], str]] = {
    "results": keys.alarm_results,
    "flips": keys.alarm_flips,
    "notifications": keys.alarm_notifications,
}
MAX_REASON = 500
ZERO_OK = ("grace", "keep_firing", "repeat_every")
CONFIG_EXAMPLE = '{"url": "https://example.com/health"}'

# Shortcut option -> (config key, the kinds it belongs to).
SHORTCUTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "url": ("url", ("http",)),
    "host": ("host", ("tcp",)),
    "port": ("port", ("tcp",)),
    "timeout": ("timeout", ("http", "tcp")),
    "period": ("period", ("heartbeat",)),
    "grace": ("grace", ("heartbeat",)),
    "metric": ("metric", ("threshold",)),
    "above": ("above", ("threshold",)),
    "below": ("below", ("threshold",)),
    "recover": ("recover", ("threshold",)),
}


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    """Return a DURATION option (seconds, or like 30s, 5m, 1h, 2d) in whole seconds; '0' only where 0 is allowed."""
    if value is None:
        return None
    text = value.strip()
    if param.name in ZERO_OK and re.fullmatch(r"0+\s*[smhd]?", text):
        return 0
    try:
        return triggers.parse_every(text)
    except Invalid:
        raise click.BadParameter(f"{value!r} is not seconds or a duration like 30s, 5m, 1h or 2d") from None


class OneLineCommand(click.Command):
    """A command whose usage mistakes print one `Error:` line and exit 2, like every other mistake."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Parse the arguments; turn click's usage errors into one-line errors."""
        try:
            return super().parse_args(ctx, args)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as exc:
            raise CLIError(BadRequest(exc.format_message())) from None


class OneLineGroup(click.Group):
    """A group of one-line-error commands; an unknown subcommand is one line too."""

    command_class = OneLineCommand

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """Find the subcommand; turn 'no such command' into a one-line error."""
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            raise CLIError(BadRequest(exc.format_message())) from None


def _connect() -> tuple[Settings, Redis]:
    """Load the task modules (task alarms name their @check) and connect to Redis."""
    settings = _settings()
    registry.load(settings.task_modules)
    return settings, _redis(settings)


def _given(**options: Any) -> dict[str, Any]:
    return {name: value for name, value in options.items() if value is not None}


def _at(epoch: float | None) -> str:
    """Return Unix seconds as ISO 8601 UTC to the second, or '-'."""
    return _iso(None if epoch is None else int(epoch))


def _parse_config(raw: str | None) -> dict[str, Any] | None:
    """Return --config as an object, or raise Invalid saying how to write it."""
    if raw is None:
        return None
    try:
        parsed = json.loads(raw)
    except ValueError as exc:
        raise Invalid(f"--config is not valid JSON ({exc}); give an object like '{CONFIG_EXAMPLE}'") from None
    if not isinstance(parsed, dict):
        raise Invalid(f"--config must be a JSON object like '{CONFIG_EXAMPLE}', got {raw!r}")
    return parsed


def _shortcut_values(kind: str, shortcuts: dict[str, Any]) -> dict[str, Any]:
    """Return the config keys the shortcut options set, refusing options that belong to another kind."""
    given = {name: value for name, value in shortcuts.items() if value is not None}
    if kind in monitors.KINDS:  # a wrong kind is reported by the domain, naming the kinds
        for name in given:
            _, kinds = SHORTCUTS[name]
            if kind not in kinds:
                takes = [f"--{n}" for n, (_, ks) in SHORTCUTS.items() if kind in ks]
                hint = f"a {kind} alarm takes {', '.join(takes)} or --config" if takes else f"use --config for {kind}"
                raise Invalid(f"--{name} is for {' and '.join(kinds)} alarms; {hint}")
    return {SHORTCUTS[name][0]: value for name, value in given.items()}


def _merge_shortcuts(config: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """Return `config` with the shortcut values set; a new --above or --below replaces the old bound."""
    merged = dict(config)
    if "above" in values or "below" in values:
        old_bound = merged.get("above", merged.get("below"))
        if "recover" not in values and merged.get("recover") == old_bound:
            merged.pop("recover", None)  # it defaulted to the old bound: let it default to the new one
        merged.pop("above", None)
        merged.pop("below", None)
    return {**merged, **values}


def _markers(alarm: dict[str, Any], now: float) -> list[str]:
    out = []
    if alarm["acked"] and alarm["state"] == "firing":
        out.append("acked")
    if alarm["silenced_until"] and alarm["silenced_until"] > now:
        reason = f" ({alarm['silence_reason']})" if alarm["silence_reason"] else ""
        out.append(f"silenced until {_at(alarm['silenced_until'])}{reason}")
    return out


def _summary(alarm: dict[str, Any], now: float) -> str:
    parts = [f"{alarm['kind']} every {alarm['interval']}s", f"{alarm['state']} since {_at(alarm['since'])}"]
    return ", ".join(parts + _markers(alarm, now))


SHORTCUT_OPTIONS = (
    click.option(
        "--config", "config_json", metavar="JSON", help=f"The check's config as a JSON object, like '{CONFIG_EXAMPLE}'."
    ),
    click.option("--url", help="http: the URL to request."),
    click.option("--host", help="tcp: the host to connect to."),
    click.option("--port", type=int, help="tcp: the port to connect to."),
    click.option("--timeout", type=float, metavar="SECONDS", help="http, tcp: seconds to wait for an answer."),
    click.option(
        "--period",
        metavar="DURATION",
        callback=_duration,
        help="heartbeat: a ping is expected every DURATION, like 1d.",
    ),
    click.option(
        "--grace", metavar="DURATION", callback=_duration, help="heartbeat: extra DURATION a ping may be late."
    ),
    click.option("--metric", help="threshold: the metric to watch, like disk.used_pct."),
    click.option("--above", type=float, help="threshold: fire when the metric is above this."),
    click.option("--below", type=float, help="threshold: fire when the metric is below this."),
    click.option("--recover", type=float, help="threshold: resolve only past this bound (default: the firing bound)."),
)
SPEC_OPTIONS = (
    click.option("--name", help="A readable name (default: the id)."),
    click.option(
        "--interval",
        metavar="DURATION",
        callback=_duration,
        help="Check every DURATION, like 30s or 5m (default: 60s).",
    ),
    *SHORTCUT_OPTIONS,
    click.option("--failures", type=int, metavar="N", help="Fire after N failed checks in a row (default: 1)."),
    click.option("--recoveries", type=int, metavar="N", help="Resolve after N good checks in a row (default: 1)."),
    click.option(
        "--keep-firing", metavar="DURATION", callback=_duration, help="Stay firing at least DURATION (default: 0)."
    ),
    click.option("--channel", "channels", multiple=True, metavar="ID", help="Notify this channel (repeatable)."),
    click.option(
        "--repeat-every", metavar="DURATION", callback=_duration, help="Repeat while firing every DURATION; 0: never."
    ),
    click.option("--description", metavar="TEXT", help="What the alarm is for."),
)


def with_spec_options(fn: F) -> F:
    """Add the spec and config options shared by `add` and `set`."""
    for option in reversed(SPEC_OPTIONS):
        fn = option(fn)
    return fn


def _spec_fields(
    name: str | None, interval: int | None, failures: int | None, recoveries: int | None, keep_firing: int | None,
    repeat_every: int | None, description: str | None,
) -> dict[str, Any]:  # fmt: skip
    return _given(name=name, interval=interval, failures_to_fire=failures, recoveries_to_resolve=recoveries,
                  keep_firing_for=keep_firing, repeat_every=repeat_every, description=description)  # fmt: skip


@main.group(name="alarms", cls=OneLineGroup)
def alarms_cmd() -> None:
    """List, inspect, create, change, silence and check alarms."""


@alarms_cmd.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, as the API shows alarms.")
@translate_errors
def list_cmd(as_json: bool) -> None:
    """List alarms with state and last result."""
    _, conn = _connect()
    now = time.time()
    if as_json:
        _echo_json(monitors.describe_all(conn, now))
        return
    found = monitors.list_all(conn)
    rows = []
    for a in found:
        message = (a["last_result"] or {}).get("message") or "-"
        rows.append((a["id"], a["kind"], a["state"], _at(a["since"]), message, "  ".join(_markers(a, now))))
    widths = [max((len(row[i]) for row in rows), default=0) for i in range(5)]
    for row in rows:
        click.echo("  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[5]]).rstrip())


@alarms_cmd.command()
@click.argument("alarm_id", metavar="ID")
@translate_errors
def show(alarm_id: str) -> None:
    """Show alarm ID as JSON, with its ping URL."""
    _, conn = _connect()
    _echo_json(monitors.describe(conn, monitors.load(conn, alarm_id), time.time()))


@alarms_cmd.command()
@click.argument("alarm_id", metavar="ID")
@click.argument("kind", metavar="KIND")
@with_spec_options
@click.option("--disabled", is_flag=True, help="Create it turned off.")
@translate_errors
def add(
    alarm_id: str, kind: str, name: str | None, interval: int | None, config_json: str | None, url: str | None,
    host: str | None, port: int | None, timeout: float | None, period: int | None, grace: int | None,
    metric: str | None, above: float | None, below: float | None, recover: float | None, failures: int | None,
    recoveries: int | None, keep_firing: int | None, channels: tuple[str, ...], repeat_every: int | None,
    description: str | None, disabled: bool,
) -> None:  # fmt: skip
    """Create alarm ID of KIND (http, tcp, heartbeat, threshold, queue, task)."""
    _, conn = _connect()
    shortcuts = _shortcut_values(kind, {"url": url, "host": host, "port": port, "timeout": timeout,
                                        "period": period, "grace": grace, "metric": metric, "above": above,
                                        "below": below, "recover": recover})  # fmt: skip
    config = _merge_shortcuts(_parse_config(config_json) or {}, shortcuts)
    data: dict[str, Any] = {
        "id": alarm_id,
        "kind": kind,
        "config": config,
        **_spec_fields(name, interval, failures, recoveries, keep_firing, repeat_every, description),
    }
    if channels:
        data["channels"] = list(channels)
    if disabled:
        data["enabled"] = False
    now = time.time()
    created = monitors.describe(conn, monitors.create(conn, data, now), now)
    audited(conn, "alarm.create", f"alarm:{alarm_id}", None, snapshot(conn, f"alarm:{alarm_id}"))
    click.echo(f"{alarm_id}: created; {_summary(created, now)}")
    if "ping_url" in created:
        click.echo(f"ping URL: {created['ping_url']}")


@alarms_cmd.command(name="set")
@click.argument("alarm_id", metavar="ID")
@with_spec_options
@click.option("--no-channels", is_flag=True, help="Notify no channel.")
@translate_errors
def set_cmd(
    alarm_id: str, name: str | None, interval: int | None, config_json: str | None, url: str | None,
    host: str | None, port: int | None, timeout: float | None, period: int | None, grace: int | None,
    metric: str | None, above: float | None, below: float | None, recover: float | None, failures: int | None,
    recoveries: int | None, keep_firing: int | None, channels: tuple[str, ...], repeat_every: int | None,
    description: str | None, no_channels: bool,
) -> None:  # fmt: skip
    """Change the given fields of alarm ID; --config replaces the whole config, --url and the like one key."""
    _, conn = _connect()
    current = monitors.load(conn, alarm_id)
    shortcuts = _shortcut_values(current["kind"], {"url": url, "host": host, "port": port, "timeout": timeout,
                                                   "period": period, "grace": grace, "metric": metric,
                                                   "above": above, "below": below, "recover": recover})  # fmt: skip
    changes = _spec_fields(name, interval, failures, recoveries, keep_firing, repeat_every, description)
    config = _parse_config(config_json)
    if config is not None or shortcuts:
        changes["config"] = _merge_shortcuts(current["config"] if config is None else config, shortcuts)
    if channels and no_channels:
        raise Invalid("give --channel or --no-channels, not both")
    if channels or no_channels:
        changes["channels"] = list(channels)
    if not changes:
        raise Invalid("nothing to change; give an option such as --interval, --url or --config")
    now = time.time()
    before = snapshot(conn, f"alarm:{alarm_id}")
    changed = monitors.patch(conn, alarm_id, changes, now)
    audited(conn, "alarm.update", f"alarm:{alarm_id}", before, snapshot(conn, f"alarm:{alarm_id}"))
    click.echo(f"{alarm_id}: updated; {_summary(changed, now)}")


def _act(alarm_id: str, action: str, **options: Any) -> None:
    _, conn = _connect()
    now = time.time()
    before = snapshot(conn, f"alarm:{alarm_id}")
    done = monitors.act(conn, alarm_id, action, now, **options)
    reason = options.get("reason")
    audited(conn, f"alarm.{action}", f"alarm:{alarm_id}", before, snapshot(conn, f"alarm:{alarm_id}"), reason)
    click.echo(f"{alarm_id}: {_summary(done, now)}")


@alarms_cmd.command()
@click.argument("alarm_id", metavar="ID")
@translate_errors
def ack(alarm_id: str) -> None:
    """Acknowledge firing alarm ID; stop its repeats."""
    _act(alarm_id, "ack")


@alarms_cmd.command()
@click.argument("alarm_id", metavar="ID")
@click.option("--for", "duration", metavar="DURATION", help="Silence for DURATION, like 30s, 10m, 2h or 1d.")
@click.option("--until", metavar="TIME", help="Silence until TIME, ISO 8601 with a zone, like 2026-12-05T08:00+01:00.")
@click.option("--reason", metavar="TEXT", help="Why, shown with the alarm.")
@translate_errors
def silence(alarm_id: str, duration: str | None, until: str | None, reason: str | None) -> None:
    """Mute alarm ID's notifications for a while."""
    if reason is not None and len(reason) > MAX_REASON:
        raise Invalid(f"--reason must be text of at most {MAX_REASON} characters")
    end = _pause_end(duration, until, time.time())
    _act(alarm_id, "silence", until=end, reason=reason or "")


@alarms_cmd.command()
@click.argument("alarm_id", metavar="ID")
@translate_errors
def unsilence(alarm_id: str) -> None:
    """End the silence of alarm ID now."""
    _act(alarm_id, "unsilence")


@alarms_cmd.command()
@click.argument("alarm_id", metavar="ID")
@translate_errors
def enable(alarm_id: str) -> None:
    """Turn alarm ID on; it is checked at once."""
    _act(alarm_id, "enable")


@alarms_cmd.command()
@click.argument("alarm_id", metavar="ID")
@translate_errors
def disable(alarm_id: str) -> None:
    """Turn alarm ID off: no checks, no notifications."""
    _act(alarm_id, "disable")


@alarms_cmd.command()
@click.argument("alarm_id", metavar="ID")
@translate_errors
def check(alarm_id: str) -> None:
    """Check alarm ID now; print the job id."""
    _, conn = _connect()
    click.echo(engine.check_now(conn, alarm_id).id)


@alarms_cmd.command(name="rm")
@click.argument("alarm_id", metavar="ID")
@translate_errors
def rm_cmd(alarm_id: str) -> None:
    """Delete alarm ID and its logs."""
    _, conn = _connect()
    before = snapshot(conn, f"alarm:{alarm_id}")
    monitors.delete(conn, alarm_id)
    audited(conn, "alarm.delete", f"alarm:{alarm_id}", before, None)
    click.echo(f"{alarm_id}: deleted")


def _line(log: str, e: dict[str, Any]) -> str:
    if log == "results":
        return f"{_at(e['at'])}  {'ok' if e['ok'] else 'FAIL':<4}  {e.get('message') or ''}"
    if log == "flips":
        return f"{_at(e['at'])}  {e['old']} -> {e['new']}  {e.get('reason') or ''}"
    detail = "  ".join(str(e[k]) for k in ("channel", "error") if e.get(k))
    return f"{_at(e.get('at'))}  {e.get('outcome', '?'):<8}  {e.get('kind', '?'):<8}  {detail}"


def _show_log(log: str, alarm_id: str, limit: int, as_json: bool) -> None:
    _, conn = _connect()
    monitors.load(conn, alarm_id)
    entries = monitors.history(conn, LOGS[log](alarm_id), limit)
    if as_json:
        _echo_json(entries)
        return
    for e in entries:
        click.echo(_line(log, e).rstrip())


LOG_OPTIONS = (
    click.argument("alarm_id", metavar="ID"),
    click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000), help="Entries to show."),
    click.option("--json", "as_json", is_flag=True, help="Print JSON."),
)


def with_log_options(fn: F) -> F:
    """Add the ID argument and the --limit and --json options of the log commands."""
    for option in reversed(LOG_OPTIONS):
        fn = option(fn)
    return fn


@alarms_cmd.command()
@with_log_options
@translate_errors
def results(alarm_id: str, limit: int, as_json: bool) -> None:
    """List the check results of alarm ID, newest first."""
    _show_log("results", alarm_id, limit, as_json)


@alarms_cmd.command()
@with_log_options
@translate_errors
def flips(alarm_id: str, limit: int, as_json: bool) -> None:
    """List the state changes of alarm ID, newest first."""
    _show_log("flips", alarm_id, limit, as_json)


@alarms_cmd.command()
@with_log_options
@translate_errors
def notifications(alarm_id: str, limit: int, as_json: bool) -> None:
    """List alarm ID's notifications, newest first."""
    _show_log("notifications", alarm_id, limit, as_json)
