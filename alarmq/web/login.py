"""Log in with a token, get a signed session cookie, log out; GET /api/v1/session tells the page who it is.

The cookie (Flask's signed session: HttpOnly, SameSite=Lax, Secure when
ALARMQ_SESSION_COOKIE_SECURE is set) holds a session id, the principal's name
and role and a CSRF token; the session id is also kept in Redis for
SESSION_TTL, so logging out, or revoking the token, ends it everywhere.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response as BaseResponse

from alarmq import audit, auth
from alarmq.errors import Forbidden, Unauthorized
from alarmq.web import EXTENSION, redis_of
from alarmq.web.access import csrf_matches, same_origin, sent_csrf

bp = Blueprint("login", __name__, template_folder="templates")


def _next() -> str | None:
    """Return where to go after logging in: a path on this site, never another site."""
    target = request.values.get("next") or ""
    if target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return None


def _current() -> auth.Principal | None:
    """Return who the login cookie belongs to, or None (without refusing anything)."""
    if not session.get("sid"):
        return None
    try:
        return auth.resume_session(redis_of(current_app), current_app.extensions[EXTENSION]["token"], session["sid"])
    except Unauthorized:
        session.clear()
        return None


@bp.get("/login")
def login_form() -> str:
    """Show the login form, or who is logged in."""
    principal = _current()
    return render_template(
        "login.html", principal=principal, next=_next(), csrf_token=session.get("csrf") if principal else None
    )


@bp.post("/login")
def login() -> Any:
    """Exchange a token (form field `token`, or JSON {token}) for a session cookie."""
    if same_origin() is False:
        raise Forbidden("log in from this site's own login page")
    as_json = request.is_json
    body = request.get_json(silent=True) if as_json else None
    presented = body.get("token") if isinstance(body, dict) else request.form.get("token")
    conn = redis_of(current_app)
    try:
        principal = auth.authenticate(
            conn, current_app.extensions[EXTENSION]["token"], presented.strip() if isinstance(presented, str) else None
        )
    except Unauthorized:
        if as_json:
            raise
        return render_template("login.html", principal=None, next=_next(), error="That token is not valid."), 401
    previous = session.get("sid")
    if previous:
        auth.close_session(conn, previous)
    session.clear()
    session_id, csrf = auth.open_session(conn, principal)
    session.update(sid=session_id, csrf=csrf, name=principal.name, role=principal.role)
    session.permanent = True
    audit.record(conn, principal.name, "session.login", f"token:{principal.name}", None, None, via="page",
                 request={"method": "POST", "path": request.path, "status": 200 if as_json else 303})  # fmt: skip
    if as_json:
        return jsonify(name=principal.name, role=principal.role, csrf_token=csrf)
    return redirect(_next() or url_for("login.login_form"), 303)


@bp.post("/logout")
def logout() -> BaseResponse:
    """End the session (the CSRF token comes as X-CSRF-Token or the form field csrf_token)."""
    session_id = session.get("sid")
    if session_id:
        if not csrf_matches(sent_csrf()):
            raise Forbidden("logging out needs the session's CSRF token")
        conn = redis_of(current_app)
        auth.close_session(conn, session_id)
        name = str(session.get("name"))
        audit.record(conn, name, "session.logout", f"token:{name}", None, None, via="page",
                     request={"method": "POST", "path": request.path, "status": 303})  # fmt: skip
    session.clear()
    return redirect(url_for("login.login_form"), 303)


@bp.get("/api/v1/session")
def get_session() -> Response:
    """Say who the request is from; a page logged in with the cookie also gets its CSRF token."""
    principal: auth.Principal = g.principal
    cookie = g.auth_via == "cookie"
    return jsonify(
        name=principal.name, role=principal.role, via=g.auth_via, csrf_token=session.get("csrf") if cookie else None
    )
