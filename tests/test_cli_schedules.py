"""`alarmq schedules …` and `alarmq scheduler status`: the schedule API's operations from a shell."""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import redis as redis_py
from click.testing import CliRunner, Result

from alarmq import keys, ledger, registry, scheduler, schedules
from alarmq.cli import main
from alarmq.settings import Settings
from tests.conftest import assert_one_line_error

WARSAW = ZoneInfo("Europe/Warsaw")


def cli(runner: CliRunner, *args: str) -> Result:
    """Run `alarmq ARGS` and return the result."""
    return runner.invoke(main, list(args))


def ok(runner: CliRunner, *args: str) -> str:
    """Run `alarmq ARGS`, require exit 0 and return its output."""
    result = cli(runner, *args)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def declared(monkeypatch: pytest.MonkeyPatch) -> str:
    """Declare schedule `hourly-echo` in code for this test only; return its id."""
    monkeypatch.setitem(
        registry._DECLARED, "hourly-echo", {"task": "echo", "kwargs": {"message": "hi"}, "interval": "1h"}
    )
    return "hourly-echo"


@pytest.fixture
def keep_signal_handlers() -> Iterator[None]:
    """Restore the SIGINT and SIGTERM handlers that an in-process scheduler replaces."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def test_add_stores_the_schedule_and_list_and_show_describe_it(runner: CliRunner, redis: redis_py.Redis) -> None:
    out = ok(
        runner, "schedules", "add", "nightly", "echo", "message=123", "--cron", "0 3 * * *", "--tz", "Europe/Warsaw"
    )
    assert out.startswith("nightly: created; cron 0 3 * * * (Europe/Warsaw), enabled, next ")

    stored = schedules.load(redis, "nightly")
    assert (stored["task"], stored["kwargs"], stored["cron"], stored["interval"]) == (
        "echo",
        {"message": "123"},
        "0 3 * * *",
        None,
    )
    assert (stored["timezone"], stored["enabled"], stored["source"]) == ("Europe/Warsaw", True, "api")

    [line] = ok(runner, "schedules", "list").splitlines()
    sid, rest = line.split(maxsplit=1)
    assert sid == "nightly"
    assert rest.startswith("cron 0 3 * * * (Europe/Warsaw)  enabled  next ")
    next_fire = datetime.fromisoformat(rest.rsplit(" ", 1)[1])
    assert next_fire.utcoffset() == timedelta(0)
    assert next_fire.timestamp() > time.time()
    assert next_fire.astimezone(WARSAW).strftime("%H:%M") == "03:00"

    shown = json.loads(ok(runner, "schedules", "show", "nightly"))
    assert (shown["id"], shown["trigger"], shown["paused"]) == ("nightly", "cron 0 3 * * * (Europe/Warsaw)", False)
    assert shown["next_fire_times"][0] == int(next_fire.timestamp())
    listed = json.loads(ok(runner, "schedules", "list", "--json"))
    assert [s["id"] for s in listed] == ["nightly"]


def test_add_takes_every_interval_and_the_spec_options(runner: CliRunner, redis: redis_py.Redis) -> None:
    options = ["--queue", "default", "--timeout", "30", "--misfire", "once", "--overlap", "allow"]
    options += ["--description", "half a second", "--disabled"]
    ok(runner, "schedules", "add", "a", "sleep", "seconds=0.5", "--every", "90s", *options)
    ok(runner, "schedules", "add", "b", "echo", "message=x", "--interval", "45")
    a, b = schedules.load(redis, "a"), schedules.load(redis, "b")
    assert (a["interval"], a["kwargs"], a["queue"], a["timeout"]) == (90, {"seconds": 0.5}, "default", 30)
    assert (a["misfire"], a["overlap"], a["description"], a["enabled"]) == ("once", "allow", "half a second", False)
    assert (b["interval"], b["queue"], b["misfire"], b["enabled"]) == (45, keys.SCHEDULED_QUEUE, "skip", True)
    lines = ok(runner, "schedules", "list").splitlines()
    assert [line.split()[0] for line in lines] == ["a", "b"]
    assert "disabled" in lines[0] and lines[0].endswith("next -")


def test_set_retimes_the_stored_schedule_and_show_reflects_it(runner: CliRunner, redis: redis_py.Redis) -> None:
    ok(runner, "schedules", "add", "tick", "echo", "message=old", "--every", "30s")
    before = schedules.load(redis, "tick")

    out = ok(runner, "schedules", "set", "tick", "--cron", "*/5 * * * *", "--tz", "Europe/Warsaw")
    assert out.startswith("tick: updated; cron */5 * * * * (Europe/Warsaw), enabled, next ")

    after = schedules.load(redis, "tick")
    assert (after["interval"], after["cron"], after["timezone"]) == (None, "*/5 * * * *", "Europe/Warsaw")
    assert after["kwargs"] == {"message": "old"}
    assert after["version"] == before["version"] + 1
    assert redis.sismember(keys.schedules_dirty(), "tick")
    shown = json.loads(ok(runner, "schedules", "show", "tick"))
    assert shown["trigger"] == "cron */5 * * * * (Europe/Warsaw)"
    assert all(t % 300 == 0 for t in shown["next_fire_times"])

    ok(runner, "schedules", "set", "tick", "message=new", "--description", "renamed")
    changed = schedules.load(redis, "tick")
    assert (changed["kwargs"], changed["description"], changed["cron"]) == (
        {"message": "new"},
        "renamed",
        "*/5 * * * *",
    )


def test_set_without_changes_exits_2_and_leaves_the_schedule(runner: CliRunner, redis: redis_py.Redis) -> None:
    ok(runner, "schedules", "add", "tick", "echo", "message=x", "--every", "30s")
    assert_one_line_error(cli(runner, "schedules", "set", "tick"), 2, "nothing to change")
    assert schedules.load(redis, "tick")["version"] == 1


def test_set_on_a_declared_schedule_is_an_override_that_reset_drops(
    runner: CliRunner, redis: redis_py.Redis, declared: str
) -> None:
    schedules.sync_declared(redis, time.time())
    ok(runner, "schedules", "set", declared, "--every", "10m")
    assert schedules.load(redis, declared)["overridden"] == ["interval"]
    [line] = [ln for ln in ok(runner, "schedules", "list").splitlines() if ln.startswith(declared)]
    assert line.split()[:3] == [declared, "every", "600s"]
    assert line.endswith("overrides: interval")

    assert ok(runner, "schedules", "reset", declared).startswith(f"{declared}: reset; every 3600s, enabled, next ")
    restored = schedules.load(redis, declared)
    assert (restored["interval"], restored["overridden"]) == (3600, [])


def test_disable_and_enable_switch_the_stored_flag(runner: CliRunner, redis: redis_py.Redis) -> None:
    ok(runner, "schedules", "add", "tick", "echo", "message=x", "--every", "30s")
    assert ok(runner, "schedules", "disable", "tick") == "tick: every 30s, disabled, next -\n"
    off = schedules.load(redis, "tick")
    assert off["enabled"] is False
    assert off["off_since"] is not None
    assert ok(runner, "schedules", "enable", "tick").startswith("tick: every 30s, enabled, next ")
    assert schedules.load(redis, "tick")["enabled"] is True


def test_pause_for_a_duration_then_resume(runner: CliRunner, redis: redis_py.Redis) -> None:
    ok(runner, "schedules", "add", "tick", "echo", "message=x", "--every", "30s")
    started = time.time()
    out = ok(runner, "schedules", "pause", "tick", "--for", "10m")
    assert "paused until " in out
    paused_until = schedules.load(redis, "tick")["paused_until"]
    assert started + 600 <= paused_until <= time.time() + 600
    assert json.loads(ok(runner, "schedules", "show", "tick"))["paused"] is True
    [line] = ok(runner, "schedules", "list").splitlines()
    next_fire = datetime.fromisoformat(line.rsplit(" ", 1)[1]).timestamp()
    assert paused_until <= next_fire < paused_until + 30  # the first slot after the pause, not one it skips

    assert ok(runner, "schedules", "resume", "tick").startswith("tick: every 30s, enabled, next ")
    assert schedules.load(redis, "tick")["paused_until"] is None
    assert_one_line_error(cli(runner, "schedules", "resume", "tick"), 4, "schedule tick is not paused")


def test_pause_until_a_time_with_a_zone(runner: CliRunner, redis: redis_py.Redis) -> None:
    ok(runner, "schedules", "add", "tick", "echo", "message=x", "--every", "30s")
    until = (datetime.now(WARSAW) + timedelta(hours=2)).replace(microsecond=0)
    ok(runner, "schedules", "pause", "tick", "--until", until.isoformat())
    assert schedules.load(redis, "tick")["paused_until"] == until.timestamp()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give one of --for DURATION"),
        (["--for", "10m", "--until", "2099-01-01T00:00:00+00:00"], "give one of --for DURATION"),
        (["--for", "soon"], "--for must be a duration like 30s"),
        (["--until", "2020-01-01T00:00:00+00:00"], "--until must be a future time with a zone"),
        (["--until", "2099-01-01T00:00:00"], "--until must be a future time with a zone"),
    ],
)
def test_pause_mistakes_exit_2_and_leave_the_schedule_running(
    runner: CliRunner, redis: redis_py.Redis, args: list[str], message: str
) -> None:
    ok(runner, "schedules", "add", "tick", "echo", "message=x", "--every", "30s")
    assert_one_line_error(cli(runner, "schedules", "pause", "tick", *args), 2, message)
    assert schedules.load(redis, "tick")["paused_until"] is None


def test_run_enqueues_a_job_that_the_ledger_records(
    runner: CliRunner, redis: redis_py.Redis, run_jobs: Callable[[], int]
) -> None:
    ok(runner, "schedules", "add", "tick", "echo", "message=now", "--every", "1h")
    job_id = ok(runner, "schedules", "run", "tick").strip()

    assert redis.lrange(f"rq:queue:{keys.SCHEDULED_QUEUE}", 0, -1) == [job_id.encode()]
    assert redis.exists(f"rq:job:{job_id}")
    [entry], _ = ledger.read(redis, "tick")
    assert (entry["outcome"], entry["job_id"], entry["reason"]) == ("enqueued", job_id, "run now")

    run_jobs()
    [entry], _ = ledger.read(redis, "tick")
    assert entry["outcome"] == "finished"
    [line] = ok(runner, "schedules", "runs", "tick").splitlines()
    assert line.split()[1:] == ["finished", job_id, "run", "now"]
    assert [e["job_id"] for e in json.loads(ok(runner, "schedules", "runs", "tick", "--json"))] == [job_id]


def test_rm_deletes_the_schedule_and_its_ledger(runner: CliRunner, redis: redis_py.Redis) -> None:
    ok(runner, "schedules", "add", "tick", "echo", "message=x", "--every", "1h")
    ok(runner, "schedules", "run", "tick")
    assert ok(runner, "schedules", "rm", "tick") == "tick: deleted\n"
    assert not redis.exists(keys.schedule("tick"), keys.schedule_ledger("tick"), keys.schedule_ledger_order("tick"))
    assert not redis.sismember(keys.schedules_index(), "tick")
    assert ok(runner, "schedules", "list") == ""
    assert_one_line_error(cli(runner, "schedules", "show", "tick"), 3, "no schedule 'tick'")


def test_reset_of_a_schedule_created_from_the_cli_exits_4(runner: CliRunner, redis: redis_py.Redis) -> None:
    ok(runner, "schedules", "add", "tick", "echo", "message=x", "--every", "1h")
    result = cli(runner, "schedules", "reset", "tick")
    assert_one_line_error(result, 4, "schedule tick was created through the API; it has no declared default")
    assert schedules.load(redis, "tick")["version"] == 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--cron", "0 25 * * *"], "cron '0 25 * * *' is not valid"),
        (["--cron", "0 3 * *"], "cron must have 5 fields"),
        (["--cron", "0 3 * * *", "--tz", "Mars/Olympus"], "timezone 'Mars/Olympus' is not a known IANA zone"),
        (["--every", "30s", "--tz", "Europe/Nowhere"], "timezone 'Europe/Nowhere' is not a known IANA zone"),
        (["--every", "soon"], "every must be seconds or a duration"),
        (["--interval", "0"], "interval must be a whole number of seconds from 1"),
        ([], "give one of --every DURATION, --interval SECONDS or --cron EXPR"),
        (
            ["--every", "30s", "--cron", "* * * * *"],
            "give one of --every, --interval or --cron, not --every and --cron",
        ),
        (["--every", "30s", "--misfire", "twice"], "misfire must be one of skip, once, got 'twice'"),
        (["--every", "30s", "--queue", "nope"], "queue must be one of"),
        (["--every", "30s", "--timeout", "0"], "timeout must be a whole number"),
    ],
)
def test_add_mistakes_exit_2_with_one_line_and_store_nothing(
    runner: CliRunner, redis: redis_py.Redis, options: list[str], message: str
) -> None:
    result = cli(runner, "schedules", "add", "bad", "echo", "message=x", *options)
    assert_one_line_error(result, 2, message)
    assert not redis.exists(keys.schedule("bad"))
    assert redis.smembers(keys.schedules_index()) == set()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["schedules", "add", "Bad Id", "echo", "message=x", "--every", "1m"], "id must be 1-64 of a-z"),
        (["schedules", "add", "x", "os.system", "command=ls", "--every", "1m"], "unknown task 'os.system'"),
        (["schedules", "add", "x", "echo", "--every", "1m"], "task 'echo' needs argument 'message'"),
        (["schedules", "add", "x", "echo", "message", "--every", "1m"], "arguments are key=value, got 'message'"),
        (["schedules", "preview"], "give one of --cron EXPR or --every DURATION"),
        (["schedules", "preview", "--cron", "0 3 * * *", "--tz", "Nowhere"], "timezone 'Nowhere' is not a known"),
        (["scheduler", "--burst", "status"], "--burst runs a scheduler; it does not go with `scheduler status`"),
    ],
)
def test_other_bad_input_exits_2_with_one_line(
    runner: CliRunner, redis: redis_py.Redis, args: list[str], message: str
) -> None:
    assert_one_line_error(cli(runner, *args), 2, message)
    assert redis.dbsize() == 0


@pytest.mark.parametrize(
    "args",
    [
        ["show", "ghost"],
        ["set", "ghost", "--every", "1m"],
        ["set", "ghost", "message=x"],
        ["enable", "ghost"],
        ["disable", "ghost"],
        ["pause", "ghost", "--for", "1m"],
        ["resume", "ghost"],
        ["reset", "ghost"],
        ["run", "ghost"],
        ["runs", "ghost"],
        ["rm", "ghost"],
    ],
)
def test_commands_on_a_missing_schedule_exit_3(runner: CliRunner, redis: redis_py.Redis, args: list[str]) -> None:
    assert_one_line_error(cli(runner, "schedules", *args), 3, "no schedule 'ghost'")
    assert redis.keys("alarmq:schedule*") == []


def test_adding_an_existing_id_exits_4_and_keeps_the_first(runner: CliRunner, redis: redis_py.Redis) -> None:
    ok(runner, "schedules", "add", "tick", "echo", "message=first", "--every", "1h")
    result = cli(runner, "schedules", "add", "tick", "echo", "message=second", "--every", "1m")
    assert_one_line_error(result, 4, "schedule 'tick' exists")
    assert schedules.load(redis, "tick")["kwargs"] == {"message": "first"}


def test_preview_prints_ten_warsaw_fire_times_in_utc_and_local(runner: CliRunner) -> None:
    lines = ok(runner, "schedules", "preview", "--cron", "0 3 * * *", "--tz", "Europe/Warsaw").splitlines()
    assert len(lines) == 10
    pairs = [tuple(datetime.fromisoformat(part) for part in line.split()) for line in lines]
    for utc, local in pairs:
        assert utc == local
        assert utc.utcoffset() == timedelta(0)
        assert local.utcoffset() == local.astimezone(WARSAW).utcoffset()
        assert local.strftime("%H:%M") == "03:00"
    assert [local.date() - pairs[0][1].date() for _, local in pairs] == [timedelta(days=d) for d in range(10)]
    assert pairs[0][0].timestamp() > time.time()


def test_preview_of_an_interval_steps_by_it(runner: CliRunner) -> None:
    lines = ok(runner, "schedules", "preview", "--every", "90m").splitlines()
    times = [datetime.fromisoformat(line.split()[0]).timestamp() for line in lines]
    assert len(times) == 10
    assert {b - a for a, b in itertools.pairwise(times)} == {5400}


def test_scheduler_status_without_a_scheduler_says_no_leader_runs(runner: CliRunner) -> None:
    out = ok(runner, "scheduler", "status")
    assert out.splitlines()[0] == "leader:    none running (start one with `alarmq scheduler` or `alarmq up`)"
    assert "standbys:  none" in out
    assert json.loads(ok(runner, "scheduler", "status", "--json"))["leader"] is None


def test_scheduler_status_shows_the_leader_and_its_tick(
    runner: CliRunner, redis: redis_py.Redis, settings: Settings
) -> None:
    process = scheduler.SchedulerProcess(settings, redis)
    process.step(time.time())
    try:
        out = ok(runner, "scheduler", "status").splitlines()
        assert out[0].startswith(f"leader:    {socket.gethostname()} pid {os.getpid()}, leading since ")
        assert out[1] == "standbys:  none"
        assert out[2].startswith("last tick: ") and out[2] != "last tick: -"
        report = json.loads(ok(runner, "scheduler", "status", "--json"))
        assert report["leader"]["id"] == process.id
    finally:
        process._leave()


def test_scheduler_burst_still_runs_one_tick(
    runner: CliRunner, redis: redis_py.Redis, declared: str, keep_signal_handlers: None
) -> None:
    result = runner.invoke(main, ["scheduler", "--burst"])
    assert result.exit_code == 0, result.output
    assert schedules.load(redis, declared)["source"] == "code"  # the tick synced the declared schedules
    assert scheduler.status(redis)["leader"] is None  # and the process left
