"""`alarmq alarms …`: the alarms API's operations from a shell, against a real Redis and a local HTTP target."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone

import pytest
import redis as redis_py
from click.testing import CliRunner, Result
from flask.testing import FlaskClient

from alarmq import channels, engine, keys, monitors
from alarmq.cli import main
from alarmq.settings import Settings
from tests.conftest import assert_one_line_error


class Target(http.server.BaseHTTPRequestHandler):
    up = True

    def do_GET(self) -> None:
        self.send_response(200 if Target.up else 503)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"hi")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def target() -> Iterator[str]:
    """Serve an HTTP target that answers 200 while Target.up, else 503."""
    Target.up = True
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Target)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def cli(runner: CliRunner, *args: str) -> Result:
    """Run `alarmq alarms ARGS` and return the result."""
    return runner.invoke(main, ["alarms", *args])


def ok(runner: CliRunner, *args: str) -> str:
    """Run `alarmq alarms ARGS`, require exit 0 and return its output."""
    result = cli(runner, *args)
    assert result.exit_code == 0, result.output
    return result.output


def check(redis: redis_py.Redis, settings: Settings, alarm_id: str) -> None:
    assert engine.check_batch(redis, settings, [alarm_id])["checked"] == 1


def at(iso: str) -> float:
    """Return the Unix time of an ISO 8601 UTC timestamp the CLI printed."""
    parsed = datetime.fromisoformat(iso)
    assert parsed.utcoffset() == timedelta(0), iso
    return parsed.timestamp()


def test_add_check_show_and_list_follow_a_target_going_down(
    runner: CliRunner, redis: redis_py.Redis, target: str, run_jobs: Callable[[], int]
) -> None:
    before = int(time.time())
    out = ok(runner, "add", "home", "http", "--url", target, "--timeout", "2", "--interval", "5m")
    assert out.startswith("home: created; http every 300s, unknown since ")
    assert before <= at(out.strip().rsplit(" ", 1)[1]) <= time.time()
    stored = monitors.load(redis, "home")
    assert (stored["config"]["url"], stored["config"]["timeout"], stored["interval"]) == (target, 2.0, 300)
    assert (stored["name"], stored["state"], stored["channels"], stored["enabled"]) == ("home", "unknown", [], True)

    job_id = ok(runner, "check", "home").strip()
    assert redis.lrange(f"rq:queue:{keys.CHECKS_QUEUE}", 0, -1) == [job_id.encode()]
    run_jobs()
    shown = json.loads(ok(runner, "show", "home"))
    assert (shown["id"], shown["state"], shown["last_result"]["ok"]) == ("home", "ok", True)
    assert shown["last_result"]["message"].startswith("HTTP 200 in ")
    assert "ping_url" not in shown and "ping_token" not in shown

    Target.up = False
    ok(runner, "check", "home")
    run_jobs()
    [line] = ok(runner, "list").splitlines()
    cells = line.split("  ")
    assert [c.strip() for c in cells if c.strip()][:3] == ["home", "http", "firing"]
    assert "expected HTTP 200, got 503" in line
    assert "acked" not in line and "silenced" not in line
    assert monitors.load(redis, "home")["state"] == "firing"
    [listed] = json.loads(ok(runner, "list", "--json"))
    assert (listed["id"], listed["state"], listed["silenced"]) == ("home", "firing", False)


def test_ack_silence_and_unsilence_change_the_stored_alarm(
    runner: CliRunner, redis: redis_py.Redis, settings: Settings, target: str
) -> None:
    ok(runner, "add", "home", "http", "--url", target)
    check(redis, settings, "home")
    assert_one_line_error(cli(runner, "ack", "home"), 4, "alarm home is not firing")
    assert monitors.load(redis, "home")["acked"] is False

    Target.up = False
    check(redis, settings, "home")
    assert ok(runner, "ack", "home").strip().endswith(", acked")
    assert monitors.load(redis, "home")["acked"] is True

    started = time.time()
    out = ok(runner, "silence", "home", "--for", "10m", "--reason", "deploy")
    assert "silenced until " in out and out.strip().endswith("(deploy)")
    silenced = monitors.load(redis, "home")
    assert started + 600 <= silenced["silenced_until"] <= time.time() + 600
    assert silenced["silence_reason"] == "deploy"
    [line] = ok(runner, "list").splitlines()
    assert line.endswith("acked  silenced until " + line.rsplit("silenced until ", 1)[1])
    assert json.loads(ok(runner, "show", "home"))["silenced"] is True

    assert "silenced" not in ok(runner, "unsilence", "home")
    assert (monitors.load(redis, "home")["silenced_until"], monitors.load(redis, "home")["silence_reason"]) == (
        None,
        None,
    )

    until = (datetime.now(timezone(timedelta(hours=1))) + timedelta(hours=2)).replace(microsecond=0)
    ok(runner, "silence", "home", "--until", until.isoformat())
    assert monitors.load(redis, "home")["silenced_until"] == until.timestamp()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give one of --for DURATION"),
        (["--for", "soon"], "--for must be a duration like 30s"),
        (["--until", "2020-01-01T00:00:00+00:00"], "--until must be a future time with a zone"),
        (["--for", "1h", "--reason", "x" * 501], "--reason must be text of at most 500 characters"),
    ],
)
def test_silence_mistakes_exit_2_and_leave_the_alarm_unsilenced(
    runner: CliRunner, redis: redis_py.Redis, args: list[str], message: str
) -> None:
    ok(runner, "add", "home", "tcp", "--host", "127.0.0.1", "--port", "9")
    assert_one_line_error(cli(runner, "silence", "home", *args), 2, message)
    assert monitors.load(redis, "home")["silenced_until"] is None


def test_heartbeat_add_prints_a_ping_url_that_the_api_accepts(
    runner: CliRunner, redis: redis_py.Redis, client: FlaskClient
) -> None:
    lines = ok(runner, "add", "backup", "heartbeat", "--period", "1d", "--grace", "30m").splitlines()
    assert lines[0].startswith("backup: created; heartbeat every 60s, unknown since ")
    assert lines[1].startswith("ping URL: /api/v1/heartbeats/")
    ping_url = lines[1].removeprefix("ping URL: ")
    stored = monitors.load(redis, "backup")
    assert ping_url == f"/api/v1/heartbeats/{stored['ping_token']}"
    assert stored["config"] == {"period": 86400, "grace": 1800}
    assert json.loads(ok(runner, "show", "backup"))["ping_url"] == ping_url

    assert client.post(ping_url).status_code == 200
    assert monitors.load(redis, "backup")["state"] == "ok"


def test_set_changes_only_the_given_fields(runner: CliRunner, redis: redis_py.Redis) -> None:
    ok(runner, "add", "home", "http", "--url", "http://127.0.0.1:9/a", "--timeout", "2", "--description", "front")
    out = ok(runner, "set", "home", "--url", "http://127.0.0.1:9/b", "--interval", "30s", "--failures", "3")
    assert out.startswith("home: updated; http every 30s, unknown since ")
    changed = monitors.load(redis, "home")
    assert (changed["config"]["url"], changed["config"]["timeout"]) == ("http://127.0.0.1:9/b", 2.0)
    assert (changed["interval"], changed["failures_to_fire"], changed["description"]) == (30, 3, "front")
    assert changed["version"] == 2
    assert redis.hget(keys.alarms_intervals(), "home") == b"30"

    ok(runner, "set", "home", "--config", '{"url": "http://127.0.0.1:9/c"}', "--keep-firing", "0")
    replaced = monitors.load(redis, "home")
    assert (replaced["config"]["url"], replaced["config"]["timeout"]) == ("http://127.0.0.1:9/c", 10.0)
    assert (replaced["keep_firing_for"], replaced["interval"]) == (0, 30)

    assert_one_line_error(cli(runner, "set", "home"), 2, "nothing to change")
    assert_one_line_error(cli(runner, "set", "home", "--host", "db"), 2, "--host is for tcp alarms; a http alarm")
    assert monitors.load(redis, "home")["version"] == 3


def test_threshold_shortcuts_set_the_bound_and_its_recover(runner: CliRunner, redis: redis_py.Redis) -> None:
    ok(runner, "add", "cpu", "threshold", "--metric", "cpu.load", "--above", "90", "--recover", "70")
    assert monitors.load(redis, "cpu")["config"] == {"metric": "cpu.load", "above": 90, "recover": 70, "for_seconds": 0}
    ok(runner, "set", "cpu", "--above", "95")
    assert monitors.load(redis, "cpu")["config"]["recover"] == 70  # an explicit recover stays

    ok(runner, "add", "disk", "threshold", "--metric", "disk.free_pct", "--above", "50")
    ok(runner, "set", "disk", "--below", "10")
    assert monitors.load(redis, "disk")["config"] == {
        "metric": "disk.free_pct", "below": 10, "recover": 10, "for_seconds": 0}  # fmt: skip


def test_channels_are_named_on_add_and_cleared_on_set(runner: CliRunner, redis: redis_py.Redis) -> None:
    channels.create(redis, {"id": "ops", "kind": "webhook", "config": {"url": "http://127.0.0.1:9/hook"}})
    ok(runner, "add", "home", "tcp", "--host", "127.0.0.1", "--port", "9", "--channel", "ops", "--repeat-every", "0")
    assert (monitors.load(redis, "home")["channels"], monitors.load(redis, "home")["repeat_every"]) == (["ops"], 0)
    assert_one_line_error(cli(runner, "set", "home", "--channel", "nope"), 2, "channels[0] 'nope' is not a channel")
    ok(runner, "set", "home", "--no-channels")
    assert monitors.load(redis, "home")["channels"] == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["x", "smtp", "--config", "{}"], "kind must be one of http, tcp, heartbeat"),
        (["x", "http", "--config", "{url: 1}"], "--config is not valid JSON"),
        (["x", "http", "--config", '["http://a"]'], "--config must be a JSON object"),
        (["x", "http", "--config", '{"url": "ftp://x"}'], "config.url must start with http:// or https://"),
        (["x", "http", "--config", '{"url": "http://x", "colour": 1}'], "config has no field 'colour'"),
        (["x", "http", "--url", "http://x", "--channel", "nope"], "channels[0] 'nope' is not a channel"),
        (["x", "tcp", "--url", "http://x"], "--url is for http alarms; a tcp alarm takes --host, --port, --timeout"),
        (["x", "queue", "--period", "1h"], "--period is for heartbeat alarms; use --config for queue"),
        (["x", "tcp", "--host", "h", "--port", "70000"], "config.port must be"),
        (["x", "tcp", "--host", "h", "--port", "ninety"], "Invalid value for '--port'"),
        (["x", "heartbeat", "--period", "soon"], "Invalid value for '--period': 'soon' is not seconds or a duration"),
        (["x", "heartbeat", "--period", "0"], "Invalid value for '--period': '0' is not seconds"),
        (["x", "threshold", "--metric", "m", "--above", "50", "--recover", "60"], "config.recover must be"),
        (["x", "http", "--url", "http://x", "--interval", "2d"], "interval must be a whole number from 1 to 86400"),
        (["X!", "tcp", "--host", "h", "--port", "1"], "id must be 1-64 of a-z"),
        (["x"], "Missing argument 'KIND'"),
        (["x", "http", "--bogus"], "No such option '--bogus'"),
    ],
)
def test_add_mistakes_exit_2_with_one_line_and_store_nothing(
    runner: CliRunner, redis: redis_py.Redis, args: list[str], message: str
) -> None:
    assert_one_line_error(cli(runner, "add", *args), 2, message)
    assert redis.keys("alarmq:alarm*") == []


def test_adding_an_existing_id_exits_4_and_keeps_the_first(runner: CliRunner, redis: redis_py.Redis) -> None:
    ok(runner, "add", "home", "tcp", "--host", "first", "--port", "1")
    assert_one_line_error(
        cli(runner, "add", "home", "tcp", "--host", "second", "--port", "1"), 4, "alarm 'home' exists"
    )
    assert monitors.load(redis, "home")["config"]["host"] == "first"


@pytest.mark.parametrize(
    "args",
    [
        ["show", "ghost"],
        ["set", "ghost", "--interval", "1m"],
        ["rm", "ghost"],
        ["ack", "ghost"],
        ["silence", "ghost", "--for", "1m"],
        ["unsilence", "ghost"],
        ["enable", "ghost"],
        ["disable", "ghost"],
        ["check", "ghost"],
        ["results", "ghost"],
        ["flips", "ghost"],
        ["notifications", "ghost"],
    ],
)
def test_commands_on_a_missing_alarm_exit_3(runner: CliRunner, redis: redis_py.Redis, args: list[str]) -> None:
    assert_one_line_error(cli(runner, *args), 3, "no alarm 'ghost'")
    assert redis.keys("alarmq:alarm*") == []
    assert not redis.exists(f"rq:queue:{keys.CHECKS_QUEUE}")


def test_results_and_flips_list_newest_first(
    runner: CliRunner, redis: redis_py.Redis, settings: Settings, target: str
) -> None:
    ok(runner, "add", "home", "http", "--url", target, "--failures", "2")
    check(redis, settings, "home")
    Target.up = False
    check(redis, settings, "home")
    check(redis, settings, "home")

    lines = ok(runner, "results", "home").splitlines()
    assert [line.split()[1] for line in lines] == ["FAIL", "FAIL", "ok"]
    assert lines[0].endswith("expected HTTP 200, got 503") and "HTTP 200 in " in lines[2]
    times = [at(line.split()[0]) for line in lines]
    assert times == sorted(times, reverse=True)
    [newest] = ok(runner, "results", "home", "--limit", "1").splitlines()
    assert newest == lines[0]
    assert [r["ok"] for r in json.loads(ok(runner, "results", "home", "--json"))] == [False, False, True]

    flip_lines = ok(runner, "flips", "home").splitlines()
    assert [line.split()[1:4] for line in flip_lines] == [
        ["pending", "->", "firing"], ["ok", "->", "pending"], ["unknown", "->", "ok"]]  # fmt: skip
    assert ok(runner, "notifications", "home") == ""
    assert json.loads(ok(runner, "notifications", "home", "--json")) == []
    assert_one_line_error(cli(runner, "results", "home", "--limit", "0"), 2, "Invalid value for '--limit'")


def test_disable_and_enable_take_the_alarm_off_and_back_on_the_due_set(
    runner: CliRunner, redis: redis_py.Redis
) -> None:
    ok(runner, "add", "home", "tcp", "--host", "127.0.0.1", "--port", "9", "--disabled")
    assert monitors.load(redis, "home")["state"] == "disabled"
    assert redis.zscore(keys.alarms_due(), "home") is None
    assert ok(runner, "enable", "home").startswith("home: tcp every 60s, unknown since ")
    assert redis.zscore(keys.alarms_due(), "home") is not None
    assert ok(runner, "disable", "home").startswith("home: tcp every 60s, disabled since ")
    assert (monitors.load(redis, "home")["enabled"], redis.zscore(keys.alarms_due(), "home")) == (False, None)


def test_rm_deletes_the_alarm_and_its_logs(runner: CliRunner, redis: redis_py.Redis, settings: Settings) -> None:
    ok(runner, "add", "home", "tcp", "--host", "127.0.0.1", "--port", "9")
    check(redis, settings, "home")
    assert redis.exists(keys.alarm_results("home"), keys.alarm_flips("home")) == 2
    assert ok(runner, "rm", "home") == "home: deleted\n"
    assert redis.keys("alarmq:alarm*") == []
    assert ok(runner, "list") == ""
    assert_one_line_error(cli(runner, "show", "home"), 3, "no alarm 'home'")


def test_an_unknown_subcommand_is_one_line(runner: CliRunner) -> None:
    assert_one_line_error(cli(runner, "mute", "home"), 2, "No such command 'mute'")


def test_alarm_changes_from_the_shell_are_audited(runner: CliRunner, redis: redis_py.Redis) -> None:
    from alarmq import audit

    assert runner.invoke(main, ["alarms", "add", "db", "tcp", "--host", "127.0.0.1", "--port", "9"]).exit_code == 0
    assert runner.invoke(main, ["alarms", "set", "db", "--interval", "30"]).exit_code == 0
    assert runner.invoke(main, ["alarms", "rm", "db"]).exit_code == 0
    entries, _ = audit.read(redis, 10)
    actions = [e["action"] for e in entries]
    assert {"alarm.create", "alarm.update", "alarm.delete"} <= set(actions)
    assert all(e["via"] == "cli" for e in entries if e["action"].startswith("alarm."))
