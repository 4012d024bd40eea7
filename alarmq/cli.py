"""The `alarmq` command: run the processes and work with jobs from a shell.

Errors print one line (`Error: …`) and exit with a code that says what went
wrong: 1 a job failed or timed out waiting, 2 bad input or settings, 3 not
found, 4 wrong state, 5 Redis unreachable.
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

import click

from alarmq import __version__, connection, registry
from alarmq.errors import AlarmqError, BadRequest, ConfigError, Conflict, NotFound, RedisUnavailable
from alarmq.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])

EXIT_CODES: tuple[tuple[type[AlarmqError], int], ...] = (
    (BadRequest, 2),
    (ConfigError, 2),
    (NotFound, 3),
    (Conflict, 4),
    (RedisUnavailable, 5),
)
FINAL_STATUSES = ("finished", "failed", "stopped", "canceled")


class CLIError(click.ClickException):
    """An alarmq error shown as one line, with a meaningful exit code."""

    def __init__(self, error: AlarmqError) -> None:
        super().__init__(error.message)
        code = next((code for cls, code in EXIT_CODES if isinstance(error, cls)), 1)
        self.exit_code = code  # type: ignore[misc]


def translate_errors(fn: F) -> F:
    """Turn alarmq errors raised by a command into one-line CLI errors."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except AlarmqError as exc:
            raise CLIError(exc) from None

    return wrapper  # type: ignore[return-value]


def _settings() -> Settings:
    ctx = click.get_current_context()
    if "settings" not in ctx.meta:
        ctx.meta["settings"] = Settings.from_env()
    return ctx.meta["settings"]  # type: ignore[no-any-return]


def _redis(settings: Settings) -> Any:
    """Connect to REDIS_URL, or to the embedded Redis a running `alarmq up` started."""
    if not settings.redis_url:
        from alarmq.embedded import EmbeddedRedis

        embedded = EmbeddedRedis(settings.data_dir)
        if not embedded.answers():
            raise RedisUnavailable("no Redis: start the stack with `alarmq up`, or set REDIS_URL")
        settings = settings.replace(redis_url=embedded.url)
    conn = connection.connect(settings)
    click.get_current_context().call_on_close(conn.close)
    connection.check(conn, settings.redis_url)
    return conn


def who() -> str:
    """Return the OS user running the command, as the audit log names them."""
    import getpass
    import os

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container user with no passwd entry and no $USER
        return f"uid:{os.getuid()}" if hasattr(os, "getuid") else "unknown"


def audited(
    conn: Any, action: str, target: str, before: dict[str, Any] | None = None, after: dict[str, Any] | None = None,
    reason: str | None = None,
) -> None:  # fmt: skip
    """Record a change made from the shell in the audit log (via "cli", who = the OS user)."""
    from alarmq import audit

    audit.record(conn, who(), action, target, before, after, reason, via="cli")


def snapshot(conn: Any, target: str) -> dict[str, Any] | None:
    """Return `kind:id` as the audit log keeps it (before a change), or None."""
    from alarmq import audit

    return audit.snapshot(conn, target)


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


class LazyGroup(click.Group):
    """The `alarmq` group: the bigger command groups load only when one is run.

    A worker, scheduler or web process starts through `alarmq`, and importing
    every group (alarms, channels, tokens, their SMTP and HTTP clients) would
    cost each of them several MB for nothing. A group module registers itself
    on `main` when imported.
    """

    lazy = {
        "alarms": "alarmq.cli_alarms",
        "channels": "alarmq.cli_channels",
        "schedules": "alarmq.cli_schedules",
        "tokens": "alarmq.cli_tokens",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            importlib.import_module(self.lazy[cmd_name])
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="alarmq")
def main() -> None:
    """alarmq: jobs and alarms on RQ and Redis."""


# -- processes -----------------------------------------------------------------


@main.command()
@click.option("--windows-mode", is_flag=True, help="Run waitress and the simple worker, as on Windows.")
@translate_errors
def up(windows_mode: bool) -> None:
    """Start Redis (when REDIS_URL is unset), web, worker and scheduler together."""
    from alarmq.supervisor import Supervisor

    _logging()
    settings = _settings()
    if windows_mode:
        settings = settings.replace(windows_mode=True)
    sys.exit(Supervisor(settings, out=click.echo).run())


@main.command()
@click.option("--server", type=click.Choice(["gunicorn", "waitress"]), help="Default: gunicorn, waitress on Windows.")
@click.option("--host", help="Address to bind (default: HOST or 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port (default: PORT or 8000).")
@translate_errors
def web(server: str | None, host: str | None, port: int | None) -> None:
    """Serve the API, the dashboard and rq-dashboard."""
    from alarmq import auth
    from alarmq.web.serve import serve

    _logging()
    settings = _settings().replace(**{k: v for k, v in (("host", host), ("port", port)) if v is not None})
    if not auth.load_token(settings):
        raise ConfigError(
            f"no API token: set ALARMQ_API_TOKEN, or run `alarmq up` once to create {settings.token_file}"
        )
    connection.check(connection.connect(settings), settings.redis_url)
    serve(settings, server)


@main.command()
@click.option("--queue", "-q", "queues", multiple=True, help="Queue to serve, in priority order (repeatable).")
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option("--concurrency", "-c", type=click.IntRange(1, 64), help="Worker processes (default: 1).")
@click.option("--class", "worker_class", type=click.Choice(["simple", "fork"]), help="Worker mode.")
@translate_errors
def worker(queues: tuple[str, ...], burst: bool, concurrency: int | None, worker_class: str | None) -> None:
    """Run jobs: scheduled runs first, then the default queue."""
    from alarmq import keys
    from alarmq.pool import Pool

    _logging()
    settings = _settings()
    if worker_class:
        settings = settings.replace(worker_class=worker_class)
    if not settings.redis_url:
        raise ConfigError("REDIS_URL is not set; `alarmq up` sets it for its children")
    names = list(queues) or list(keys.WORKER_QUEUES)
    sys.exit(Pool(settings, names, concurrency or settings.worker_concurrency, burst=burst).run())


@main.group(name="scheduler", invoke_without_command=True)
@click.option("--burst", is_flag=True, help="Run one tick and stop.")
@click.pass_context
@translate_errors
def scheduler_cmd(ctx: click.Context, burst: bool) -> None:
    """Produce periodic runs and delayed retries (run one or more; they coordinate)."""
    if ctx.invoked_subcommand is not None:
        if burst:
            raise BadRequest(f"--burst runs a scheduler; it does not go with `scheduler {ctx.invoked_subcommand}`")
        return
    from alarmq import scheduler

    _logging()
    settings = _settings()
    if not settings.redis_url:
        raise ConfigError("REDIS_URL is not set; `alarmq up` sets it for its children")
    scheduler.run(settings, burst=burst)


@scheduler_cmd.command(name="status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@translate_errors
def scheduler_status(as_json: bool) -> None:
    """Show the leader, standbys, last tick and lag."""
    from alarmq import scheduler

    report = scheduler.status(_redis(_settings()))
    if as_json:
        _echo_json(report)
        return
    leader = report["leader"]
    if leader is None:
        click.echo("leader:    none running (start one with `alarmq scheduler` or `alarmq up`)")
    else:
        since = _iso(leader.get("leader_since") or leader.get("since"))
        click.echo(f"leader:    {leader.get('host')} pid {leader.get('pid')}, leading since {since}")
    standbys = [f"{s.get('host')} pid {s.get('pid')}" for s in report["standbys"]]
    click.echo(f"standbys:  {', '.join(standbys) or 'none'}")
    click.echo(f"last tick: {_iso(report['last_tick'])}")
    click.echo(f"tick ms:   {_or_dash(report['tick_ms'])}")
    click.echo(f"lag ms:    {_or_dash(report['lag_ms'])}")


def _iso(epoch: float | None) -> str:
    """Return Unix seconds as ISO 8601 UTC, or '-' for none."""
    from alarmq import triggers

    return "-" if epoch is None else triggers.to_datetime(epoch).isoformat()


def _or_dash(value: object) -> str:
    return "-" if value is None else str(value)


# -- jobs ----------------------------------------------------------------------


def _parse_kwargs(task: registry.Task, pairs: tuple[str, ...]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    props = task.schema["properties"]
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            raise BadRequest(f"arguments are key=value, got {pair!r}")
        if props.get(name, {}).get("type") == "string":
            kwargs[name] = raw  # strings are taken as typed, so message=123 stays text
            continue
        try:
            kwargs[name] = json.loads(raw)
        except ValueError:
            kwargs[name] = raw
    return kwargs


@main.command()
@click.argument("task")
@click.argument("args", nargs=-1)
@click.option("--queue", help="Queue (default: the task's).")
@click.option("--timeout", type=int, help="Seconds the job may run.")
@click.option("--retries", type=int, help="Retries on failure.")
@click.option("--wait", is_flag=True, help="Wait for the job and print its result.")
@click.option("--wait-timeout", default=60.0, show_default=True, help="Seconds to wait with --wait.")
@translate_errors
def enqueue(
    task: str, args: tuple[str, ...], queue: str | None, timeout: int | None, retries: int | None,
    wait: bool, wait_timeout: float,
) -> None:  # fmt: skip
    """Enqueue TASK with key=value arguments and print the job id."""
    from alarmq import jobs

    settings = _settings()
    registry.load(settings.task_modules)
    conn = _redis(settings)
    kwargs = _parse_kwargs(registry.get(task), args)
    job = jobs.enqueue(conn, settings, task, kwargs, queue_name=queue, timeout=timeout, retries=retries, source="cli")
    audited(conn, "job.enqueue", f"job:{job.id}", None, snapshot(conn, f"job:{job.id}"))
    if not wait:
        click.echo(job.id)
        return
    deadline = time.monotonic() + wait_timeout
    while (status := job.get_status().value) not in FINAL_STATUSES:
        if time.monotonic() > deadline:
            raise CLIError(AlarmqError(f"job {job.id} is still {status} after {wait_timeout:.0f}s"))
        time.sleep(0.05)
    described = jobs.describe(job, status)
    if status != "finished":
        raise CLIError(AlarmqError(f"job {job.id} {status}: {described['error']}"))
    click.echo(json.dumps(described["result"], default=str))


@main.command()
@click.argument("job_id")
@translate_errors
def job(job_id: str) -> None:
    """Show one job as JSON."""
    from alarmq import jobs

    settings = _settings()
    _echo_json(jobs.describe(jobs.fetch(_redis(settings), job_id)))


@main.command(name="jobs")
@click.option("--status", help="Only jobs with this status.")
@click.option("--task", help="Only jobs of this task.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 500))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@translate_errors
def jobs_cmd(status: str | None, task: str | None, limit: int, as_json: bool) -> None:
    """List jobs, newest first."""
    from alarmq import jobs

    page, _ = jobs.list_jobs(_redis(_settings()), status=status, task=task, limit=limit)
    if as_json:
        _echo_json(page)
        return
    for j in page:
        click.echo(f"{j['id']}  {j['status']:<9} {j['task'] or '?':<16} {j['enqueued_at'] or ''}")


@main.command()
@click.argument("job_id")
@translate_errors
def cancel(job_id: str) -> None:
    """Cancel a waiting job or stop a running one."""
    from alarmq import jobs

    conn = _redis(_settings())
    before = snapshot(conn, f"job:{job_id}")
    jobs.cancel(conn, job_id)
    audited(conn, "job.cancel", f"job:{job_id}", before, snapshot(conn, f"job:{job_id}"))
    click.echo(f"{job_id}: cancel requested")


@main.command()
@click.argument("job_id")
@translate_errors
def requeue(job_id: str) -> None:
    """Requeue a failed, stopped or canceled job."""
    from alarmq import jobs

    conn = _redis(_settings())
    before = snapshot(conn, f"job:{job_id}")
    jobs.requeue(conn, job_id)
    audited(conn, "job.requeue", f"job:{job_id}", before, snapshot(conn, f"job:{job_id}"))
    click.echo(f"{job_id}: requeued")


@main.command()
@click.argument("job_id")
@translate_errors
def delete(job_id: str) -> None:
    """Delete a job that is not running."""
    from alarmq import jobs

    conn = _redis(_settings())
    before = snapshot(conn, f"job:{job_id}")
    jobs.delete(conn, job_id)
    audited(conn, "job.delete", f"job:{job_id}", before, snapshot(conn, f"job:{job_id}"))
    click.echo(f"{job_id}: deleted")


@main.command()
@translate_errors
def tasks() -> None:
    """List the registered tasks."""
    settings = _settings()
    registry.load(settings.task_modules)
    for t in registry.all_tasks():
        params = ", ".join(t.schema["properties"])
        click.echo(f"{t.name}({params})  {t.description}")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@translate_errors
def status(as_json: bool) -> None:
    """Show Redis, workers, schedulers and queue depths."""
    from alarmq import jobs
    from alarmq.health import health

    settings = _settings()
    registry.load(settings.task_modules)
    report = health(_redis(settings), sorted(jobs.known_queues()))
    if as_json:
        _echo_json(report)
        return
    r = report["redis"]
    click.echo(f"status:    {report['status']}")
    click.echo(f"redis:     {r.get('version')} ({r.get('used_memory_mb')} MB)")
    click.echo(f"workers:   {len(report['workers'])} ({sum(w['state'] == 'busy' for w in report['workers'])} busy)")
    click.echo(f"scheduler: {'alive' if report['scheduler']['alive'] else 'none running'}")
    click.echo("queues:    " + ", ".join(f"{q}={n}" for q, n in report["queues"].items()))
