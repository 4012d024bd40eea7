"""Guard every request: who is asking (token, basic password or login cookie), may they, and audit what they change.

One app-level `before_request` authenticates everything but the public routes
and checks the role the route needs: reading needs `viewer`, changing needs
`operator`, managing tokens needs `admin`. A change made with the login
cookie must carry the session's CSRF token (`X-CSRF-Token`); one made with a
bearer token needs none, since no browser sends that header on its own. An
`after_request` hook writes every successful change to the audit log, with the
target's state before and after where it is cheap to read.
"""

from __future__ import annotations

import base64
import hmac
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, g, jsonify, redirect, request, session, url_for
from werkzeug.wrappers import Response as BaseResponse

from alarmq import audit, auth
from alarmq.errors import AlarmqError, Forbidden, Unauthorized
from alarmq.web import EXTENSION, redis_of, settings_of

log = logging.getLogger(__name__)

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
PUBLIC = frozenset({
    "api.get_health", "api.get_openapi",
    # The secret ping URL is the credential, so cron jobs need no token.
    "alarms.heartbeat_ping", "alarms.heartbeat_fail",
    "login.login_form", "login.login", "login.logout", "static",
})  # fmt: skip
ADMIN = frozenset({"admin.list_tokens", "admin.get_token", "admin.add_token", "admin.revoke_token"})
RQ_PREFIX = "rq_dashboard."
RQ_MUTATING = frozenset(
    RQ_PREFIX + name for name in ("delete_job_view", "requeue_job_view", "requeue_all", "empty_queue", "compact_queue")
)
"""rq-dashboard's routes that change something (requeue_all even answers GET)."""
NOT_AUDITED = frozenset({"alarms.push_metric"})
"""Metric samples are data, not changes: pushed every few seconds they would crowd real changes out of the log."""
WS_ENDPOINT = "relay.websocket"
CSRF_HEADER = "X-CSRF-Token"
REASON_HEADER = "X-Audit-Reason"
_COLLECTIONS = {"schedules": "schedule", "alarms": "alarm", "channels": "channel", "jobs": "job", "tokens": "token"}
_VERBS = {"POST": "create", "PATCH": "update", "PUT": "update", "DELETE": "delete"}
_RENAMES = {"job.create": "job.enqueue", "token.create": "token.add", "token.delete": "token.revoke"}


def init_app(app: Flask) -> None:
    """Install the guard and the audit hook; call before anything else adds a before_request."""
    app.before_request(_guard)
    app.after_request(_audit_change)


# -- who is asking ----------------------------------------------------------------


def current_principal(app: Flask) -> auth.Principal:
    """Return the request's principal, authenticating it now if the guard has not yet."""
    principal: auth.Principal | None = g.get("principal")
    if principal is None:
        principal = _authenticate(app)
    return principal


def _authenticate(app: Flask) -> auth.Principal:
    """Authenticate by bearer token, HTTP Basic password (rq-dashboard) or the login cookie."""
    conn = redis_of(app)
    bootstrap = app.extensions[EXTENSION]["token"]
    header = request.headers.get("Authorization")
    if header:
        presented = auth.bearer(header)
        via = "bearer"
        if presented is None:
            presented, via = _basic_password(header), "basic"
        principal = auth.authenticate(conn, bootstrap, presented)
    elif session.get("sid"):
        try:
            principal = auth.resume_session(conn, bootstrap, session["sid"])
        except Unauthorized:
            session.clear()
            raise
        via = "cookie"
    else:
        raise Unauthorized("send the API token as 'Authorization: Bearer <token>', or log in at /login")
    g.principal, g.auth_via = principal, via
    return principal


def _basic_password(header: str) -> str | None:
    if not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:], validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    return decoded.partition(":")[2] or None


# -- may they ------------------------------------------------------------------------


def required_role(endpoint: str, method: str) -> str:
    """Return the least role that may call `endpoint` with `method`."""
    if endpoint in ADMIN:
        return "admin"
    if endpoint in RQ_MUTATING or method not in SAFE_METHODS:
        return "operator"
    return "viewer"


def _is_change(endpoint: str) -> bool:
    return request.method not in SAFE_METHODS or endpoint in RQ_MUTATING


def _guard() -> BaseResponse | None:
    # /ws's rule matches only a real WebSocket handshake; a plain GET of it has no endpoint but is still guarded.
    endpoint = request.endpoint or (WS_ENDPOINT if request.path == "/ws" else None)
    if endpoint is None or endpoint in PUBLIC:
        return None  # an unknown route answers 404/405 without asking who is there
    try:
        principal = _authenticate(current_app)
        principal.require(required_role(endpoint, request.method))
        if _is_change(endpoint):
            _check_csrf(endpoint)
            _plan_audit(endpoint)
        elif endpoint == WS_ENDPOINT and g.auth_via == "cookie" and same_origin() is False:
            raise Forbidden("a WebSocket opened with the login cookie must come from this site")
    except AlarmqError as exc:
        if endpoint.startswith(RQ_PREFIX):
            return _rq_refusal(exc)
        if isinstance(exc, Unauthorized) and _is_page():
            return redirect(url_for("login.login_form", next=request.full_path.rstrip("?")))
        raise
    return None


def csrf_matches(sent: str | None) -> bool:
    """Return True if `sent` is this session's CSRF token."""
    expected = session.get("csrf")
    return bool(sent and expected) and hmac.compare_digest(str(sent).encode(), str(expected).encode())


def sent_csrf() -> str | None:
    """Return the CSRF token the request carries: the header, or a form field of an HTML form."""
    if request.headers.get(CSRF_HEADER):
        return request.headers[CSRF_HEADER]
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return request.form.get("csrf_token")
    return None


def _check_csrf(endpoint: str) -> None:
    """Refuse a change a browser could have been tricked into sending with its ambient credentials."""
    via = g.auth_via
    if via == "bearer":
        return  # a page on another site cannot make a browser send this header
    if via == "cookie":
        if csrf_matches(sent_csrf()):
            return
        # rq-dashboard's own scripts cannot send our header; its same-origin requests say where they come from.
        if endpoint.startswith(RQ_PREFIX) and same_origin() is True:
            return
        raise Forbidden(
            f"a change made with the login cookie must carry the {CSRF_HEADER} header of GET /api/v1/session"
        )
    if same_origin() is False:  # basic credentials, which browsers send by themselves
        raise Forbidden("a change made with basic credentials must not come from another site")


def same_origin() -> bool | None:
    """Return whether the request comes from a page of this site: True, False, or None if it does not say."""
    source = request.headers.get("Origin") or request.headers.get("Referer")
    if source is None:
        site = request.headers.get("Sec-Fetch-Site")
        return None if site is None else site in ("same-origin", "none")
    if source == "null":
        return False
    return urlsplit(source).netloc in _own_hosts()


def _own_hosts() -> set[str]:
    hosts = {request.host}
    forwarded = request.headers.get("X-Forwarded-Host")
    if forwarded:
        hosts.add(forwarded.split(",")[0].strip())
    if current_app.config.get("ALARMQ_WS_PORT"):  # under waitress /ws is on a side port of the same host
        hosts.add(f"{request.host.rsplit(':', 1)[0]}:{settings_of(current_app).port}")
    return hosts


def _is_page() -> bool:
    return not request.path.startswith(("/api/", "/ws", "/rq")) and request.accept_mimetypes.accept_html


def _rq_refusal(exc: AlarmqError) -> Response:
    response = jsonify(error=exc.message)
    response.status_code = exc.status
    if exc.status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="alarmq rq-dashboard"'
    return response


# -- what they changed -------------------------------------------------------------


@dataclass
class _Plan:
    action: str
    target: str | None
    """`kind:id`, or None when the id comes back in the response (a create)."""
    kind: str
    before: dict[str, Any] | None = None


def _plan_audit(endpoint: str) -> None:
    if endpoint in NOT_AUDITED or request.url_rule is None:
        return
    args = request.view_args or {}
    if endpoint.startswith(RQ_PREFIX):
        if "job_id" in args:
            where = f"job:{args['job_id']}"
        else:
            where = "queue:" + "/".join(str(args[k]) for k in ("queue_name", "registry_name") if k in args)
        g.audit_plan = _Plan("rq-dashboard." + endpoint.removeprefix(RQ_PREFIX), where, "queue")
        return
    parts = request.url_rule.rule.removeprefix("/api/v1/").split("/")
    kind = _COLLECTIONS.get(parts[0], parts[0])
    tail = parts[-1] if len(parts) > 1 and not parts[-1].startswith("<") else None
    verb = tail or _VERBS.get(request.method, request.method.lower())
    action = _RENAMES.get(f"{kind}.{verb}", f"{kind}.{verb}")
    target: str | None = kind
    if len(parts) > 1 and parts[1].startswith("<"):
        variable = parts[1].strip("<>").rpartition(":")[2]
        target = f"{kind}:{args[variable]}"
    elif kind in _COLLECTIONS.values():
        target = None
    plan = _Plan(action, target, kind)
    if target is not None:
        plan.before = audit.snapshot(redis_of(current_app), target)
    g.audit_plan = plan


def _audit_change(response: Response) -> Response:
    plan: _Plan | None = g.pop("audit_plan", None)
    if plan is None or response.status_code >= 400:
        return response  # nothing changed: refused requests store nothing
    conn = redis_of(current_app)
    principal: auth.Principal = g.principal
    body = response.get_json(silent=True) if response.is_json else None
    target = plan.target
    if target is None:
        ident = body.get("id", body.get("name")) if isinstance(body, dict) else None
        target = f"{plan.kind}:{ident}"
    detail: dict[str, Any] = {"method": request.method, "path": request.path, "status": response.status_code}
    if isinstance(body, dict) and str(body.get("url", "")).startswith("/api/v1/jobs/") and plan.kind != "job":
        detail["job"] = body.get("id")
    try:
        after = audit.snapshot(conn, target)
        audit.record(conn, principal.name, plan.action, target, plan.before, after, _reason(),
                     via="page" if g.auth_via == "cookie" else "api", request=detail)  # fmt: skip
    except Exception:
        # The change is made and cannot be taken back; say loudly that its record is missing.
        log.exception("audit: could not record %s %s by %s", request.method, request.path, principal.name)
    return response


def _reason() -> str | None:
    reason = request.headers.get(REASON_HEADER)
    if reason:
        return reason.strip()
    body = request.get_json(silent=True) if request.is_json else None
    found = body.get("reason") if isinstance(body, dict) else None
    return found if isinstance(found, str) and found else None
