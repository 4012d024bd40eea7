"""Open the one Redis connection pool a process uses."""

from __future__ import annotations

from typing import TypeAlias

import redis

from alarmq.errors import RedisUnavailable
from alarmq.settings import Settings

Redis: TypeAlias = redis.Redis
"""A client that returns bytes: RQ does not support decode_responses=True."""

# Short socket timeouts make a dead Redis show up as an error within seconds
# instead of a hung request; blocking reads (worker dequeue, pub/sub) pass
# their own timeout, so the read timeout is left to them.
CONNECT_TIMEOUT = 3.0


def connect(settings: Settings) -> Redis:
    """Return a client for `settings.redis_url` with an explicit pool size."""
    if not settings.redis_url:
        raise RedisUnavailable("REDIS_URL is not set; run `alarmq up`, which starts Redis, or set REDIS_URL")
    # RQ does not support decode_responses=True, so bytes come back and
    # alarmq decodes at its own boundary.
    return redis.Redis.from_url(
        settings.redis_url,
        max_connections=settings.redis_pool_size,
        socket_connect_timeout=CONNECT_TIMEOUT,
        health_check_interval=30,
    )


def check(conn: Redis, url: str | None = None) -> None:
    """Raise RedisUnavailable unless `conn` answers PING."""
    try:
        conn.ping()
    except redis.exceptions.BusyLoadingError:
        raise RedisUnavailable("Redis is still loading its data; try again in a moment") from None
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
        where = redact(url) if url else "Redis"
        raise RedisUnavailable(f"{where} is not reachable ({exc}); check REDIS_URL and that Redis runs") from None


def redact(url: str) -> str:
    """Return `url` with any password replaced, for logs and messages."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user + ':' if user else ''}***@{host}"
