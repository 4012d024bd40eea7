"""Read every setting from the environment into one frozen `Settings`.

Nothing else in alarmq reads `os.environ` for configuration. A bad value
raises `ConfigError` naming the variable and what it accepts, so a process
stops at start instead of misbehaving later.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from alarmq.errors import ConfigError

T = TypeVar("T")

WORKER_CLASSES = ("auto", "fork", "simple")
WEB_SERVERS = ("auto", "gunicorn", "waitress")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


@dataclass(frozen=True)
class Settings:
    """Every knob alarmq has; build it with `Settings.from_env()`."""

    redis_url: str | None = None
    """REDIS_URL: the Redis for queues, schedules and events. Unset: `alarmq up`
    starts an embedded server and hands its URL to its children."""

    host: str = "127.0.0.1"
    """HOST: the address the web server binds."""

    port: int = 8000
    """PORT: the web server's port (PaaS platforms set it)."""

    ws_port: int | None = None
    """ALARMQ_WS_PORT: under waitress, which cannot serve WebSockets, the port of the
    side listener that serves /ws from the same process (default: PORT + 1)."""

    api_token: str | None = field(default=None, repr=False)
    """ALARMQ_API_TOKEN: the admin token. Unset: `alarmq up` generates one on
    first start and keeps it in the data dir (`api-token`)."""

    data_dir: Path = Path(".alarmq")
    """ALARMQ_DATA_DIR: where the embedded Redis and the generated token live."""

    worker_class: str = "auto"
    """ALARMQ_WORKER_CLASS: `simple` runs jobs in the worker process and recycles
    it (fast), `fork` forks a child per job (isolated), `auto` is `simple`."""

    worker_concurrency: int = 1
    """ALARMQ_WORKER_CONCURRENCY: worker processes that `alarmq worker` runs."""

    worker_max_jobs: int = 1000
    """ALARMQ_WORKER_MAX_JOBS: a `simple` worker process is replaced after this many jobs."""

    worker_max_memory_mb: int = 256
    """ALARMQ_WORKER_MAX_MEMORY_MB: a `simple` worker process is replaced once its RSS is above this."""

    task_modules: tuple[str, ...] = ()
    """ALARMQ_TASK_MODULES: comma-separated modules to import for your tasks and checks."""

    job_timeout: int = 180
    """ALARMQ_JOB_TIMEOUT: seconds a job may run when its task sets no timeout."""

    result_ttl: int = 86400
    """ALARMQ_RESULT_TTL: seconds a finished job and its result are kept."""

    failure_ttl: int = 7 * 86400
    """ALARMQ_FAILURE_TTL: seconds a failed job and its traceback are kept."""

    web_server: str = "auto"
    """ALARMQ_WEB_SERVER: `gunicorn` (POSIX default) or `waitress` (Windows default)."""

    web_threads: int = 32
    """ALARMQ_WEB_THREADS: request threads of the web process; each open WebSocket holds one."""

    ws_queue: int = 500
    """ALARMQ_WS_QUEUE: events held for one WebSocket client; a client further behind gets a resync frame."""

    windows_mode: bool = False
    """ALARMQ_WINDOWS_MODE: run waitress and the simple worker on any OS (on by itself on Windows)."""

    embedded_redis: bool = True
    """ALARMQ_EMBEDDED_REDIS: set 0 to forbid starting an embedded Redis (containers, PaaS)."""

    redis_server: str | None = None
    """ALARMQ_REDIS_SERVER: path of a redis-server or valkey-server binary for the embedded Redis."""

    redis_pool_size: int = 64
    """ALARMQ_REDIS_POOL_SIZE: connections each process may open to Redis."""

    max_body_bytes: int = 64 * 1024
    """ALARMQ_MAX_BODY_BYTES: the largest request body the API reads."""

    secret_key: str | None = field(default=None, repr=False)
    """ALARMQ_SECRET_KEY: signs the login session cookie. Unset: generated once into the
    data dir (`secret-key`); set it when web processes on several hosts must agree."""

    session_cookie_secure: bool = False
    """ALARMQ_SESSION_COOKIE_SECURE: send the session cookie over HTTPS only (set it behind TLS)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from `environ` (default: the process environment)."""
        env = os.environ if environ is None else environ
        d = cls()
        windows = sys.platform == "win32"
        settings = cls(
            redis_url=_text(env, "REDIS_URL", d.redis_url),
            host=_text(env, "HOST", d.host) or d.host,
            port=_number(env, "PORT", d.port, 1, 65535),
            ws_port=_number(env, "ALARMQ_WS_PORT", 0, 1, 65535) or None,
            api_token=_token(env),
            data_dir=Path(_text(env, "ALARMQ_DATA_DIR", None) or d.data_dir),
            worker_class=_choice(env, "ALARMQ_WORKER_CLASS", d.worker_class, WORKER_CLASSES),
            worker_concurrency=_number(env, "ALARMQ_WORKER_CONCURRENCY", d.worker_concurrency, 1, 64),
            worker_max_jobs=_number(env, "ALARMQ_WORKER_MAX_JOBS", d.worker_max_jobs, 1, 10**9),
            worker_max_memory_mb=_number(env, "ALARMQ_WORKER_MAX_MEMORY_MB", d.worker_max_memory_mb, 32, 10**6),
            task_modules=_modules(env),
            job_timeout=_number(env, "ALARMQ_JOB_TIMEOUT", d.job_timeout, 1, 7 * 86400),
            result_ttl=_number(env, "ALARMQ_RESULT_TTL", d.result_ttl, 1, 365 * 86400),
            failure_ttl=_number(env, "ALARMQ_FAILURE_TTL", d.failure_ttl, 1, 365 * 86400),
            web_server=_choice(env, "ALARMQ_WEB_SERVER", d.web_server, WEB_SERVERS),
            web_threads=_number(env, "ALARMQ_WEB_THREADS", d.web_threads, 1, 10000),
            ws_queue=_number(env, "ALARMQ_WS_QUEUE", d.ws_queue, 10, 1_000_000),
            windows_mode=_flag(env, "ALARMQ_WINDOWS_MODE", windows),
            embedded_redis=_flag(env, "ALARMQ_EMBEDDED_REDIS", d.embedded_redis),
            redis_server=_text(env, "ALARMQ_REDIS_SERVER", None),
            redis_pool_size=_number(env, "ALARMQ_REDIS_POOL_SIZE", d.redis_pool_size, 2, 100000),
            max_body_bytes=_number(env, "ALARMQ_MAX_BODY_BYTES", d.max_body_bytes, 1024, 64 * 1024 * 1024),
            secret_key=_secret_key(env),
            session_cookie_secure=_flag(env, "ALARMQ_SESSION_COOKIE_SECURE", d.session_cookie_secure),
        )
        if settings.redis_url is not None and not settings.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError("REDIS_URL must start with redis://, rediss:// or unix://")
        if windows and settings.worker_class == "fork":
            raise ConfigError("ALARMQ_WORKER_CLASS=fork does not work on Windows; use simple or auto")
        return settings

    def replace(self, **changes: Any) -> Settings:
        """Return a copy with `changes` applied."""
        return replace(self, **changes)

    @property
    def effective_worker_class(self) -> str:
        """Return `simple` or `fork`, resolving `auto` and Windows mode."""
        if self.windows_mode or self.worker_class == "auto":
            return "simple"
        return self.worker_class

    @property
    def effective_web_server(self) -> str:
        """Return `gunicorn` or `waitress`, resolving `auto` and Windows mode."""
        if self.windows_mode:
            return "waitress"
        return "gunicorn" if self.web_server == "auto" else self.web_server

    @property
    def effective_ws_port(self) -> int:
        """Return the side listener's port for /ws under waitress."""
        return self.ws_port or (self.port + 1 if self.port < 65535 else self.port - 1)

    @property
    def token_file(self) -> Path:
        """Return where `alarmq up` keeps a generated admin token."""
        return self.data_dir / "api-token"

    @property
    def secret_key_file(self) -> Path:
        """Return where a generated session signing key is kept (when ALARMQ_SECRET_KEY is unset)."""
        return self.data_dir / "secret-key"


def _text(env: Mapping[str, str], name: str, default: str | None) -> str | None:
    value = env.get(name, "").strip()
    return value or default


def _token(env: Mapping[str, str]) -> str | None:
    token = _text(env, "ALARMQ_API_TOKEN", None)
    if token is not None and len(token) < 16:
        raise ConfigError("ALARMQ_API_TOKEN must be at least 16 characters; leave it unset to have one generated")
    return token


def _secret_key(env: Mapping[str, str]) -> str | None:
    key = _text(env, "ALARMQ_SECRET_KEY", None)
    if key is not None and len(key) < 32:
        raise ConfigError("ALARMQ_SECRET_KEY must be at least 32 characters; leave it unset to have one generated")
    return key


def _parse(env: Mapping[str, str], name: str, default: T, parse: Callable[[str], T], accepts: str) -> T:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return parse(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not valid; it accepts {accepts}") from None


def _number(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    def parse(raw: str) -> int:
        value = int(raw)
        if not low <= value <= high:
            raise ValueError(raw)
        return value

    return _parse(env, name, default, parse, f"a whole number from {low} to {high}")


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    def parse(raw: str) -> str:
        if raw.lower() not in choices:
            raise ValueError(raw)
        return raw.lower()

    return _parse(env, name, default, parse, " or ".join(choices))


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    def parse(raw: str) -> bool:
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise ValueError(raw)

    return _parse(env, name, default, parse, "1/true/yes/on or 0/false/no/off")


def _modules(env: Mapping[str, str]) -> tuple[str, ...]:
    def parse(raw: str) -> tuple[str, ...]:
        names = tuple(n.strip() for n in raw.split(",") if n.strip())
        for n in names:
            if not all(part.isidentifier() for part in n.split(".")):
                raise ValueError(n)
        return names

    return _parse(env, "ALARMQ_TASK_MODULES", (), parse, "comma-separated module names like myapp.tasks")
