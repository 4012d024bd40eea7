"""Serve /api/v1/tokens (admins manage named tokens) and /api/v1/audit (who changed what)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request, url_for

from alarmq import audit, auth
from alarmq.errors import Invalid, NotFound
from alarmq.web import inputs, redis_of

bp = Blueprint("admin", __name__, url_prefix="/api/v1")

TOKEN_FIELDS = ("name", "role")


@bp.get("/tokens")
def list_tokens() -> Response:
    """List the named tokens: name, role, created, last used; never a secret or a hash."""
    return jsonify(tokens=auth.list_tokens(redis_of(current_app)))


@bp.post("/tokens")
def add_token() -> tuple[Response, int, dict[str, str]]:
    """Create a named token; the answer holds its secret, shown this once."""
    body = inputs.json_body()
    unknown = sorted(set(body) - set(TOKEN_FIELDS))
    if unknown:
        raise Invalid(f"unknown field {unknown[0]!r}; a token takes: name, role")
    conn = redis_of(current_app)
    name = auth.validate_name(body.get("name"))
    secret = auth.add_token(conn, name, auth.validate_role(body.get("role")))
    shown = auth.describe_token(conn, name) or {"name": name}
    url = url_for("admin.get_token", name=name)
    return jsonify({**shown, "token": secret}), 201, {"Location": url, "Cache-Control": "no-store"}


@bp.get("/tokens/<name>")
def get_token(name: str) -> Response:
    """Show one named token."""
    shown = auth.describe_token(redis_of(current_app), name)
    if shown is None:
        raise NotFound(f"no token named {name!r}")
    return jsonify(shown)


@bp.delete("/tokens/<name>")
def revoke_token(name: str) -> tuple[str, int]:
    """Revoke a named token: its requests and login sessions are refused from now on."""
    auth.revoke_token(redis_of(current_app), name)
    return "", 204


@bp.get("/audit")
def list_audit() -> Response:
    """Return the audit log, newest first, a page at a time."""
    limit = inputs.int_arg("limit", 50, 1, 500)
    entries, cursor = audit.read(redis_of(current_app), limit, request.args.get("cursor"))
    return jsonify(entries=entries, next_cursor=cursor)
