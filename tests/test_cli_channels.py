"""`alarmq channels …`: the channels API's operations from a shell, against a real Redis and a local webhook sink."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import redis as redis_py
from click.testing import CliRunner, Result

from alarmq import audit, channels, keys
from alarmq.cli import main
from tests.conftest import assert_one_line_error
from tests.test_channels import HookSink, hook  # noqa: F401  (the fixture)


def cli(runner: CliRunner, *args: str, env: dict[str, str] | None = None) -> Result:
    """Run `alarmq channels ARGS` and return the result."""
    return runner.invoke(main, ["channels", *args], env=env)


def ok(runner: CliRunner, *args: str, env: dict[str, str] | None = None) -> str:
    """Run `alarmq channels ARGS`, require exit 0 and return its output."""
    result = cli(runner, *args, env=env)
    assert result.exit_code == 0, result.output
    return result.output


def add_email(runner: CliRunner) -> None:
    ok(
        runner, "add", "ops-mail", "email", "--host", "smtp.example.com", "--starttls",
        "--username", "alarmq", "--password-env", "SMTP_PASS",
        "--sender", "alarmq@example.com", "--to", "ops@example.com", "--to", "oncall@example.com",
        env={"SMTP_PASS": "hunter2-secret"},
    )  # fmt: skip


def test_add_list_show_mask_secrets(runner: CliRunner, redis: redis_py.Redis) -> None:
    out = ok(
        runner, "add", "ops-hook", "webhook", "--url", "https://hooks.example.com/x",
        "--header", "Authorization=Bearer tok-123", "--header", "X-Team=ops",
        "--template", '{"text": "{subject}: {reason}"}', "--description", "team chat",
    )  # fmt: skip
    assert "ops-hook: webhook channel created" in out
    add_email(runner)

    stored = channels.load(redis, "ops-mail")
    assert stored["config"]["password"] == "hunter2-secret"
    assert stored["config"]["starttls"] is True and stored["config"]["to"] == ["ops@example.com", "oncall@example.com"]
    hook_stored = channels.load(redis, "ops-hook")
    assert hook_stored["config"]["headers"] == {"Authorization": "Bearer tok-123", "X-Team": "ops"}
    assert hook_stored["config"]["template"] == {"text": "{subject}: {reason}"}
    assert hook_stored["description"] == "team chat"

    lines = ok(runner, "list").splitlines()
    assert len(lines) == 2
    assert lines[0].split() == ["ops-hook", "webhook", "https://hooks.example.com/x"]
    assert lines[1].split()[:3] == ["ops-mail", "email", "smtp.example.com:587"]
    assert "ops@example.com, oncall@example.com" in lines[1]

    listed = json.loads(ok(runner, "list", "--json"))
    assert [c["id"] for c in listed] == ["ops-hook", "ops-mail"]
    shown = json.loads(ok(runner, "show", "ops-mail"))
    assert shown["config"]["password"] == channels.SECRET
    assert shown["config"]["username"] == "alarmq"
    shown_hook = json.loads(ok(runner, "show", "ops-hook"))
    assert shown_hook["config"]["headers"] == {"Authorization": channels.SECRET, "X-Team": "ops"}
    for command in (("list",), ("list", "--json"), ("show", "ops-mail"), ("show", "ops-hook")):
        output = ok(runner, *command)
        assert "hunter2-secret" not in output and "tok-123" not in output

    entries, _ = audit.read(redis)
    created = [e for e in entries if e["action"] == "channel.create" and e["target"] == "channel:ops-mail"]
    assert len(created) == 1 and created[0]["via"] == "cli"
    assert "hunter2-secret" not in json.dumps(entries)


def test_password_is_taken_from_the_environment_only(runner: CliRunner, redis: redis_py.Redis) -> None:
    result = cli(
        runner, "add", "m", "email", "--host", "smtp.example.com", "--username", "u", "--password-env", "NOPE_UNSET",
        "--sender", "a@example.com", "--to", "b@example.com",
    )  # fmt: skip
    assert_one_line_error(result, 2, "--password-env names $NOPE_UNSET")
    assert not redis.exists(keys.channel("m"))
    result = cli(runner, "add", "m", "email", "--password", "x")
    assert_one_line_error(result, 2, "No such option '--password'")


def test_set_changes_only_the_given_fields(runner: CliRunner, redis: redis_py.Redis) -> None:
    ok(runner, "add", "h", "webhook", "--url", "https://a.example.com/", "--header", "Authorization=Bearer keep")
    out = ok(runner, "set", "h", "--url", "https://b.example.com/new")
    assert "https://b.example.com/new" in out
    stored = channels.load(redis, "h")
    assert stored["config"]["url"] == "https://b.example.com/new"
    assert stored["config"]["headers"] == {"Authorization": "Bearer keep"}
    assert stored["version"] == 2

    add_email(runner)
    ok(runner, "set", "ops-mail", "--to", "new@example.com", "--ssl")
    mail = channels.load(redis, "ops-mail")["config"]
    assert mail["to"] == ["new@example.com"] and mail["ssl"] is True and mail["starttls"] is False
    assert mail["password"] == "hunter2-secret" and mail["sender"] == "alarmq@example.com"

    assert_one_line_error(cli(runner, "set", "h", "--host", "smtp.example.com"), 2, "--host is for email channels")
    assert_one_line_error(cli(runner, "set", "h"), 2, "nothing to change")
    assert channels.load(redis, "h")["version"] == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--url", "ftp://example.com/"), "config.url must be an http:// or https:// URL"),
        (("--url", "https://example.com/", "--template", "{not json"), "--template is not valid JSON"),
        (("--url", "https://example.com/", "--template", '{"t": "{x.y}"}'), "config.template.t has '{x.y}'"),
        (("--url", "https://example.com/", "--header", "nonsense"), "--header is NAME=VALUE"),
        (("--url", "https://example.com/", "--to", "a@example.com"), "--to is for email channels"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_stores_nothing(
    runner: CliRunner, redis: redis_py.Redis, args: tuple[str, ...], message: str
) -> None:
    assert_one_line_error(cli(runner, "add", "bad", "webhook", *args), 2, message)
    assert not redis.exists(keys.channel("bad"))
    assert channels.list_all(redis) == []


def test_bad_set_stores_nothing(runner: CliRunner, redis: redis_py.Redis) -> None:
    ok(runner, "add", "h", "webhook", "--url", "https://a.example.com/")
    assert_one_line_error(cli(runner, "set", "h", "--url", "nope"), 2, "config.url must be")
    assert_one_line_error(cli(runner, "set", "h", "--template", "[1,"), 2, "--template is not valid JSON")
    assert channels.load(redis, "h")["config"]["url"] == "https://a.example.com/"
    assert channels.load(redis, "h")["version"] == 1


def test_unknown_id_exits_3_and_taken_id_exits_4(runner: CliRunner, redis: redis_py.Redis) -> None:
    for args in (("show", "ghost"), ("set", "ghost", "--url", "https://x.example.com/"), ("rm", "ghost"),
                 ("test", "ghost")):  # fmt: skip
        assert_one_line_error(cli(runner, *args), 3, "no channel 'ghost'")
    ok(runner, "add", "h", "webhook", "--url", "https://a.example.com/")
    assert_one_line_error(
        cli(runner, "add", "h", "webhook", "--url", "https://b.example.com/"), 4, "channel 'h' exists"
    )
    assert_one_line_error(cli(runner, "add", "x", "pager"), 2, "KIND must be one of webhook, email")
    assert_one_line_error(cli(runner, "frobnicate"), 2, "No such command")


def test_rm_deletes(runner: CliRunner, redis: redis_py.Redis) -> None:
    ok(runner, "add", "h", "webhook", "--url", "https://a.example.com/")
    assert ok(runner, "rm", "h").strip() == "h: deleted"
    assert not redis.exists(keys.channel("h"))
    assert ok(runner, "list") == ""


def test_test_enqueues_a_job_that_reaches_the_sink(
    runner: CliRunner,
    redis: redis_py.Redis,
    hook: HookSink,  # noqa: F811
    run_jobs: Callable[[], int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(channels, "BACKOFF_BASE", 0)
    ok(runner, "add", "sink", "webhook", "--url", hook.url, "--template", '{"says": "{subject}"}')
    job_id = ok(runner, "test", "sink").strip()
    assert job_id and len(job_id.splitlines()) == 1
    assert hook.requests == []
    run_jobs()
    assert len(hook.requests) == 1
    assert hook.requests[0]["path"] == "/hook"
    assert set(hook.requests[0]["json"]) == {"says"}
    job = json.loads(runner.invoke(main, ["job", job_id]).output)
    assert job["status"] == "finished"
