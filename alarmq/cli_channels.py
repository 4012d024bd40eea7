"""The `alarmq channels` commands: list, inspect, create, change, delete and test notification channels.

They do what /api/v1/channels does, through the same domain functions, and fail
the same way: one `Error: …` line and the exit codes of `alarmq.cli`. Secrets
are shown as "***". An SMTP password is read from the environment variable
named by `--password-env`, never from the command line, where `ps` shows it.
Every add, set and rm is in the audit log (via "cli").
Importing this module adds the group to `alarmq.cli.main`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import click

from alarmq import channels
from alarmq.cli import F, _echo_json, _redis, _settings, audited, main, snapshot, translate_errors
from alarmq.cli_alarms import OneLineGroup
from alarmq.errors import Invalid

TEMPLATE_EXAMPLE = '{"text": "{subject}: {reason}"}'

# Option -> the kind it belongs to (None: both kinds).
OPTION_KINDS: dict[str, str | None] = {
    "url": "webhook",
    "header": "webhook",
    "template": "webhook",
    "no_template": "webhook",
    "host": "email",
    "port": "email",
    "tls": "email",
    "username": "email",
    "password_env": "email",
    "no_login": "email",
    "sender": "email",
    "to": "email",
    "timeout": None,
}


def _flag(name: str) -> str:
    return {"tls": "--starttls/--ssl", "header": "--header"}.get(name, "--" + name.replace("_", "-"))


def _headers(pairs: tuple[str, ...]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise Invalid(f"--header is NAME=VALUE, like 'Authorization=Bearer abc', got {pair!r}")
        headers[name.strip()] = value
    return headers


def _template(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise Invalid(f"--template is not valid JSON ({exc}); give one like '{TEMPLATE_EXAMPLE}'") from None


def _password(var: str) -> str:
    value = os.environ.get(var)
    if not value:
        raise Invalid(f"--password-env names ${var}, which is not set or empty; export the SMTP password there")
    return value


def _config(kind: str, options: dict[str, Any]) -> dict[str, Any]:
    """Return the config keys the given options set, refusing options of the other kind."""
    given = {name: value for name, value in options.items() if value is not None and value is not False and value != ()}
    for name in given:
        belongs = OPTION_KINDS[name]
        if belongs is not None and belongs != kind and kind in channels.KINDS:
            raise Invalid(f"{_flag(name)} is for {belongs} channels, and this is a {kind} channel")
    config: dict[str, Any] = {}
    if "url" in given:
        config["url"] = given["url"]
    if "header" in given:
        config["headers"] = _headers(given["header"])
    if "template" in given:
        config["template"] = _template(given["template"])
    if "no_template" in given:
        config["template"] = None
    for name in ("host", "port", "sender", "timeout", "username"):
        if name in given:
            config[name] = given[name]
    if "tls" in given:
        config["starttls"] = given["tls"] == "starttls"
        config["ssl"] = given["tls"] == "ssl"
    if "password_env" in given:
        config["password"] = _password(given["password_env"])
    if "no_login" in given:
        config["username"] = config["password"] = None
    if "to" in given:
        config["to"] = list(given["to"])
    return config


def _target(channel: dict[str, Any]) -> str:
    config = channel["config"]
    if channel["kind"] == "webhook":
        return str(config["url"])
    return f"{config['host']}:{channels.smtp_port(config)} -> {', '.join(config['to'])}"


@main.group(name="channels", cls=OneLineGroup)
def channels_cmd() -> None:
    """List, inspect, create, change, delete and test notification channels (webhook, email)."""


@channels_cmd.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, as the API shows channels (secrets hidden).")
@translate_errors
def list_cmd(as_json: bool) -> None:
    """List channels: id, kind, and where they send (URL, or SMTP host -> recipients)."""
    found = channels.list_all(_redis(_settings()))
    if as_json:
        _echo_json([channels.describe(c) for c in found])
        return
    width = max((len(c["id"]) for c in found), default=0)
    for c in found:
        click.echo(f"{c['id'].ljust(width)}  {c['kind']:<7}  {_target(c)}")


@channels_cmd.command()
@click.argument("channel_id", metavar="ID")
@translate_errors
def show(channel_id: str) -> None:
    """Show channel ID as JSON, secrets hidden."""
    _echo_json(channels.describe(channels.load(_redis(_settings()), channel_id)))


WEBHOOK_OPTIONS = (
    click.option("--url", help="webhook: the http(s) URL to POST to."),
    click.option("--header", multiple=True, metavar="NAME=VALUE", help="webhook: a request header (repeatable)."),
    click.option(
        "--template", metavar="JSON", help=f"webhook: the body as JSON with placeholders, like '{TEMPLATE_EXAMPLE}'."
    ),
)
EMAIL_OPTIONS = (
    click.option("--host", help="email: the SMTP server."),
    click.option(
        "--port", type=int, help="email: the SMTP port (default: 465 with --ssl, 587 with --starttls, else 25)."
    ),
    click.option("--starttls", "tls", flag_value="starttls", help="email: upgrade the connection with STARTTLS."),
    click.option("--ssl", "tls", flag_value="ssl", help="email: connect with TLS from the start (SMTPS)."),
    click.option("--username", help="email: the SMTP login (with --password-env)."),
    click.option("--password-env", metavar="VAR", help="email: the environment variable holding the SMTP password."),
    click.option("--sender", metavar="ADDRESS", help="email: the From address."),
    click.option("--to", multiple=True, metavar="ADDRESS", help="email: a recipient (repeatable)."),
)
COMMON_OPTIONS = (
    click.option("--timeout", type=int, metavar="SECONDS", help="Seconds to wait for the server (default: 10)."),
    click.option("--description", metavar="TEXT", help="What the channel is for."),
)


def _with(options: tuple[Callable[[F], F], ...]) -> Callable[[F], F]:
    def decorate(fn: F) -> F:
        for option in reversed(options):
            fn = option(fn)
        return fn

    return decorate


@channels_cmd.command()
@click.argument("channel_id", metavar="ID")
@click.argument("kind", metavar="KIND")
@_with(WEBHOOK_OPTIONS + EMAIL_OPTIONS + COMMON_OPTIONS)
@translate_errors
def add(channel_id: str, kind: str, description: str | None, **options: Any) -> None:
    """Create channel ID of KIND (webhook or email).

    \b
    webhook: --url URL [--header NAME=VALUE ...] [--template JSON]
    email:   --host HOST [--port N] [--starttls|--ssl] [--username U --password-env VAR]
             --sender ADDRESS --to ADDRESS [--to ADDRESS ...]
    """
    if kind not in channels.KINDS:
        raise Invalid(f"KIND must be one of {', '.join(channels.KINDS)}, got {kind!r}")
    data: dict[str, Any] = {"id": channel_id, "kind": kind, "config": _config(kind, options)}
    if description is not None:
        data["description"] = description
    conn = _redis(_settings())
    created = channels.create(conn, data)
    audited(conn, "channel.create", f"channel:{channel_id}", None, snapshot(conn, f"channel:{channel_id}"))
    click.echo(f"{channel_id}: {kind} channel created, sending to {_target(created)}")


@channels_cmd.command(name="set")
@click.argument("channel_id", metavar="ID")
@_with(WEBHOOK_OPTIONS + EMAIL_OPTIONS + COMMON_OPTIONS)
@click.option("--no-template", is_flag=True, help="webhook: drop the template and send the default body.")
@click.option("--no-tls", "tls", flag_value="none", help="email: plain SMTP, neither STARTTLS nor SSL.")
@click.option("--no-login", is_flag=True, help="email: drop the username and password.")
@translate_errors
def set_cmd(channel_id: str, description: str | None, **options: Any) -> None:
    """Change only the given fields of channel ID (--header replaces all headers, --to all recipients)."""
    conn = _redis(_settings())
    current = channels.load(conn, channel_id)
    config = _config(current["kind"], options)
    changes: dict[str, Any] = {"config": config} if config else {}
    if description is not None:
        changes["description"] = description
    if not changes:
        raise Invalid("nothing to change; give at least one option (see `alarmq channels set --help`)")
    before = snapshot(conn, f"channel:{channel_id}")
    changed = channels.patch(conn, channel_id, changes)
    audited(conn, "channel.update", f"channel:{channel_id}", before, snapshot(conn, f"channel:{channel_id}"))
    click.echo(f"{channel_id}: updated, sending to {_target(changed)}")


@channels_cmd.command(name="rm")
@click.argument("channel_id", metavar="ID")
@translate_errors
def rm_cmd(channel_id: str) -> None:
    """Delete channel ID; notifications still naming it are logged as failed."""
    conn = _redis(_settings())
    before = snapshot(conn, f"channel:{channel_id}")
    channels.delete(conn, channel_id)
    audited(conn, "channel.delete", f"channel:{channel_id}", before, None)
    click.echo(f"{channel_id}: deleted")


@channels_cmd.command(name="test")
@click.argument("channel_id", metavar="ID")
@translate_errors
def test_cmd(channel_id: str) -> None:
    """Queue a test message to channel ID and print the job id (`alarmq job ID` shows if it arrived)."""
    settings = _settings()
    job = channels.send_test(_redis(settings), settings, channel_id)
    click.echo(job.id)
