"""Build the web app: the API, rq-dashboard and the error translation, wired in one place."""

from __future__ import annotations

import logging
from typing import Any

import redis
from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from alarmq import auth, connection, registry
from alarmq.connection import Redis
from alarmq.errors import AlarmqError, RedisUnavailable
from alarmq.settings import Settings

log = logging.getLogger(__name__)

EXTENSION = "alarmq"


def create_app(settings: Settings | None = None, conn: Redis | None = None) -> Flask:
    """Return the alarmq web app for `settings` (default: from the environment)."""
    settings = settings or Settings.from_env()
    registry.load(settings.task_modules)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    # The login cookie: signed with a key every web process shares, unreadable by scripts,
    # not sent on cross-site subrequests or POSTs.
    app.config.update(
        SECRET_KEY=auth.ensure_secret_key(settings),
        SESSION_COOKIE_NAME="alarmq_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.session_cookie_secure,
        PERMANENT_SESSION_LIFETIME=auth.SESSION_TTL,
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions[EXTENSION] = {
        "settings": settings,
        "redis": conn or connection.connect(settings),
        "token": auth.load_token(settings),
    }

    from alarmq.web import access, admin, alarms, api, channels, dashboard, login, relay, schedules

    access.init_app(app)  # first: every other before_request runs with the request authenticated
    app.register_blueprint(api.bp)
    app.register_blueprint(schedules.bp)
    app.register_blueprint(alarms.bp)
    app.register_blueprint(channels.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(login.bp)
    app.register_blueprint(dashboard.bp)
    relay.init_app(app, app.extensions[EXTENSION]["redis"], settings.ws_queue)
    _mount_rq_dashboard(app, settings)
    app.register_error_handler(AlarmqError, _alarmq_error)
    app.register_error_handler(redis.exceptions.ConnectionError, _redis_down)
    app.register_error_handler(redis.exceptions.TimeoutError, _redis_down)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
    return app


def settings_of(app: Flask) -> Settings:
    """Return the settings the app was built with."""
    return app.extensions[EXTENSION]["settings"]  # type: ignore[no-any-return]


def redis_of(app: Flask) -> Redis:
    """Return the app's Redis client."""
    return app.extensions[EXTENSION]["redis"]  # type: ignore[no-any-return]


def require_token(app: Flask) -> auth.Principal:
    """Return who made the current request (bearer token, basic password or login cookie), or raise Unauthorized."""
    from alarmq.web.access import current_principal

    return current_principal(app)


def require_role(app: Flask, role: str) -> auth.Principal:
    """Return who made the current request if they have `role` or higher, else raise Forbidden.

    Every route already gets the role its method implies (alarmq.web.access); this is for a route
    that needs more, such as a GET that shows something only admins may see.
    """
    principal = require_token(app)
    principal.require(role)
    return principal


def _mount_rq_dashboard(app: Flask, settings: Settings) -> None:
    import rq_dashboard
    from rq.serializers import JSONSerializer

    app.config["RQ_DASHBOARD_REDIS_URL"] = settings.redis_url
    rq_dashboard.web.config.serializer = JSONSerializer
    rq_dashboard.web.setup_rq_connection(app)
    app.register_blueprint(rq_dashboard.blueprint, url_prefix="/rq")
    # Who may see it, and who may change anything through it, is decided by
    # alarmq.web.access like for every other route: viewers get it read-only.


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> tuple[Response, int]:
    response = jsonify(error=message)
    for k, v in (headers or {}).items():
        response.headers[k] = v
    return response, status


def _alarmq_error(exc: AlarmqError) -> tuple[Response, int]:
    headers = {"WWW-Authenticate": 'Bearer realm="alarmq"'} if exc.status == 401 else None
    return _error(exc.status, exc.message, headers)


def _redis_down(exc: Exception) -> tuple[Response, int]:
    log.warning("request %s %s: redis unavailable (%s)", request.method, request.path, exc)
    return _error(RedisUnavailable.status, "redis is not reachable; try again shortly")


def _http_error(exc: HTTPException) -> Any:
    if not request.path.startswith("/api/"):
        return exc
    messages = {
        404: f"no route {request.path}; GET /api/v1/openapi.json lists them",
        405: f"{request.method} is not allowed on {request.path}",
        413: "the request body is too large",
    }
    response, status = _error(exc.code or 500, messages.get(exc.code or 0, (exc.description or exc.name).rstrip(".")))
    for name, value in exc.get_headers():
        if name.lower() != "content-type":  # keeps Allow on 405, as RFC 9110 asks
            response.headers[name] = value
    return response, status


def _unexpected(exc: Exception) -> tuple[Response, int]:
    log.exception("request %s %s failed", request.method, request.path)
    return _error(500, "internal error; the server log has the details")
