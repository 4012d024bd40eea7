"""Provide the built-in tasks: echo, sleep and http_check."""

from __future__ import annotations

import time
from typing import Any

from alarmq.registry import task


@task
def echo(message: str) -> str:
    """Return the message unchanged."""
    return message


@task
def sleep(seconds: float) -> float:
    """Sleep for the given number of seconds and return it."""
    if seconds < 0:
        raise ValueError("seconds must be zero or more")
    time.sleep(seconds)
    return seconds


@task(timeout=120)
def http_check(url: str, timeout: float = 10) -> dict[str, Any]:
    """Request a URL and return its status code and latency."""
    import httpx  # imported here so workers that never check pay nothing for it

    if not url.startswith(("http://", "https://")):
        raise ValueError("url must start with http:// or https://")
    started = time.perf_counter()
    response = httpx.get(url, timeout=timeout, follow_redirects=True)
    latency_ms = (time.perf_counter() - started) * 1000
    return {"url": url, "status": response.status_code, "ok": response.is_success, "latency_ms": round(latency_ms, 2)}
