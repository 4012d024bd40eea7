"""The `alarmq tokens` commands: add, list and revoke named API tokens.

Anyone who can run the CLI against this Redis can manage tokens: shell access
to the deployment is the admin credential here, as it is for the bootstrap
token in the data dir. Every add and revoke is in the audit log (via "cli").
Importing this module adds the group to `alarmq.cli.main`.
"""

from __future__ import annotations

import click

from alarmq import auth, triggers
from alarmq.cli import _echo_json, _redis, _settings, audited, main, snapshot, translate_errors


@main.group(name="tokens")
def tokens_cmd() -> None:
    """Add, list and revoke named API tokens (admin, operator, viewer)."""


@tokens_cmd.command(name="add")
@click.argument("name")
@click.option(
    "--role", required=True, type=click.Choice(auth.ROLES),
    help="admin: everything, tokens too; operator: steer schedules, alarms and jobs; viewer: read only.",
)  # fmt: skip
@translate_errors
def add_cmd(name: str, role: str) -> None:
    """Create token NAME and print its secret (shown this once)."""
    conn = _redis(_settings())
    secret = auth.add_token(conn, name, role)
    audited(conn, "token.add", f"token:{name}", None, snapshot(conn, f"token:{name}"))
    click.echo(secret)
    click.echo(f"{name}: {role} token created; keep the secret above, it is not shown again", err=True)


@tokens_cmd.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@translate_errors
def list_cmd(as_json: bool) -> None:
    """List named tokens: name, role, created, last used."""
    found = auth.list_tokens(_redis(_settings()))
    if as_json:
        _echo_json(found)
        return
    width = max((len(t["name"]) for t in found), default=0)
    for t in found:
        used = "never used" if t["last_used"] is None else f"last used {_iso(t['last_used'])}"
        click.echo(f"{t['name'].ljust(width)}  {t['role']:<8}  created {_iso(t['created_at'])}  {used}")


@tokens_cmd.command(name="revoke")
@click.argument("name")
@translate_errors
def revoke_cmd(name: str) -> None:
    """Revoke token NAME: its requests and login sessions are refused from now on."""
    conn = _redis(_settings())
    before = snapshot(conn, f"token:{name}")
    auth.revoke_token(conn, name)
    audited(conn, "token.revoke", f"token:{name}", before, None)
    click.echo(f"{name}: revoked")


def _iso(epoch: float) -> str:
    return triggers.to_datetime(epoch).isoformat(timespec="seconds")
