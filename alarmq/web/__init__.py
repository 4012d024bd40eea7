"""Build the web app: the API, rq-dashboard and the error translation, wired in one place."""

from __future__ import annotations

import base64
import logging
from typing import Any

import redis
from flask import Flask, Response, g, jsonify, request
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
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions[EXTENSION] = {
        "settings": settings,
        "redis": conn or connection.connect(settings),
        "token": auth.load_token(settings),
    }

    from alarmq.web import alarms, api, channels, relay, schedules

    app.register_blueprint(api.bp)
    app.register_blueprint(schedules.bp)
    app.register_blueprint(alarms.bp)
    app.register_blueprint(channels.bp)
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
    """Authenticate the current request by its bearer token (or basic password for browsers)."""
    presented = auth.bearer(request.headers.get("Authorization")) or _basic_password()
    principal = auth.check_token(app.extensions[EXTENSION]["token"], presented)
    g.principal = principal
    return principal


def _basic_password() -> str | None:
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:], validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    return decoded.partition(":")[2] or None


def _mount_rq_dashboard(app: Flask, settings: Settings) -> None:
    import rq_dashboard
    from rq.serializers import JSONSerializer

    app.config["RQ_DASHBOARD_REDIS_URL"] = settings.redis_url
    rq_dashboard.web.config.serializer = JSONSerializer
    rq_dashboard.web.setup_rq_connection(app)
    app.register_blueprint(rq_dashboard.blueprint, url_prefix="/rq")

    # An app-level hook: the blueprint is a module-level singleton, so a hook
    # on it would break the second create_app() (tests build several apps).
    @app.before_request
    def _guard_rq_dashboard() -> Response | None:
        if request.blueprint != "rq_dashboard":
            return None
        try:
            require_token(app)
        except AlarmqError as exc:
            response = jsonify(error=exc.message)
            response.status_code = exc.status
            response.headers["WWW-Authenticate"] = 'Basic realm="alarmq rq-dashboard"'
            return response
        return None


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
