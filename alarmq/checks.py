"""Run one alarm's check and say how it went: http, tcp, heartbeat, threshold, queue and task kinds.

Every check returns a Result (ok, value, latency, one-line message) or None
when there is nothing to judge yet (a threshold with no samples). Checks never
raise for a failing target: a refused connection is a failed result.
"""

from __future__ import annotations

import json
import socket
import time
from typing import TYPE_CHECKING, Any, cast

from rq import Queue, Worker
from rq.registry import FailedJobRegistry

from alarmq import keys, ledger, registry, scheduler
from alarmq.alarms import Result
from alarmq.connection import Redis

if TYPE_CHECKING:
    import httpx

STALE_SCHEDULER = 10.0


def run(conn: Redis, alarm: dict[str, Any], now: float, client: httpx.Client | None = None) -> Result | None:
    """Run the alarm's check at `now`."""
    kind = alarm["kind"]
    config = alarm["config"]
    if kind == "http":
        return http(config, now, client)
    if kind == "tcp":
        return tcp(config, now)
    if kind == "heartbeat":
        return heartbeat(alarm, now)
    if kind == "threshold":
        return threshold(conn, alarm, now)
    if kind == "queue":
        return queue(conn, alarm, now)
    return task(config, now)


def http(config: dict[str, Any], now: float, client: httpx.Client | None = None) -> Result:
    """Request the URL and judge status, body and latency."""
    import httpx  # only workers that check URLs pay for it

    own = client is None
    client = client or httpx.Client(verify=config["verify_tls"])
    started = time.perf_counter()
    try:
        response = client.request(
            config["method"], config["url"], headers=config["headers"], timeout=config["timeout"],
            follow_redirects=True,
        )  # fmt: skip
    except httpx.TimeoutException:
        return Result(ok=False, at=now, message=f"no answer within {config['timeout']:g}s")
    except httpx.HTTPError as exc:
        return Result(ok=False, at=now, message=f"request failed: {type(exc).__name__}: {exc}"[:300])
    finally:
        if own:
            client.close()
    latency = round((time.perf_counter() - started) * 1000, 2)
    failed = _http_problem(config, response, latency)
    message = failed or f"HTTP {response.status_code} in {latency:g} ms"
    return Result(ok=failed is None, at=now, value=float(response.status_code), latency_ms=latency, message=message)


def _http_problem(config: dict[str, Any], response: httpx.Response, latency: float) -> str | None:
    if response.status_code not in config["expect_status"]:
        return f"expected HTTP {' or '.join(map(str, config['expect_status']))}, got {response.status_code}"
    if config["body_contains"] and config["body_contains"] not in response.text:
        return f"body does not contain {config['body_contains']!r}"
    if config["body_not_contains"] and config["body_not_contains"] in response.text:
        return f"body contains {config['body_not_contains']!r}"
    if config["max_latency_ms"] is not None and latency > config["max_latency_ms"]:
        return f"took {latency:g} ms, more than {config['max_latency_ms']:g} ms"
    return None


def tcp(config: dict[str, Any], now: float) -> Result:
    """Open a TCP connection to host:port within the timeout."""
    started = time.perf_counter()
    target = f"{config['host']}:{config['port']}"
    try:
        with socket.create_connection((config["host"], config["port"]), timeout=config["timeout"]):
            pass
    except TimeoutError:
        return Result(ok=False, at=now, message=f"{target} did not accept within {config['timeout']:g}s")
    except OSError as exc:
        return Result(ok=False, at=now, message=f"{target}: {exc.strerror or exc}")
    latency = round((time.perf_counter() - started) * 1000, 2)
    return Result(ok=True, at=now, latency_ms=latency, message=f"{target} open in {latency:g} ms")


def heartbeat(alarm: dict[str, Any], now: float) -> Result:
    """Judge whether a ping arrived within period + grace."""
    config = alarm["config"]
    last = alarm["last_ping"] or 0.0
    age = now - last
    if alarm.get("last_fail") and alarm["last_fail"] >= last:
        return Result(ok=False, at=now, value=age, message="the job reported a failure")
    allowed = config["period"] + config["grace"]
    if age > allowed:
        return Result(ok=False, at=now, value=round(age, 3), message=f"no ping for {age:.0f}s (allowed {allowed}s)")
    return Result(ok=True, at=now, value=round(age, 3), message=f"last ping {age:.0f}s ago")


def threshold(conn: Redis, alarm: dict[str, Any], now: float) -> Result | None:
    """Judge the metric's latest samples against the bound, with hysteresis once firing."""
    config = alarm["config"]
    samples = [json.loads(s) for s in cast(list[bytes], conn.lrange(keys.metric(config["metric"]), 0, 999))]
    if not samples:
        return None
    side = "above" if "above" in config else "below"
    # Firing recovers only past the recover bound, so a value hovering at the
    # bound does not flap between firing and ok.
    bound = float(config["recover"] if alarm["state"] == "firing" else config[side])

    def breaches(value: float) -> bool:
        return bool(value > bound) if side == "above" else bool(value < bound)

    latest = samples[0]
    since = None
    for sample in samples:  # newest first: find when the current breach started
        if not breaches(sample["value"]):
            break
        since = sample["ts"]
    breaching = since is not None and now - since >= config["for_seconds"]
    word = "above" if side == "above" else "below"
    message = f"{config['metric']} = {latest['value']:g} ({'' if breaching else 'not '}{word} {bound:g})"
    return Result(ok=not breaching, at=now, value=latest["value"], message=message)


def queue(conn: Redis, alarm: dict[str, Any], now: float) -> Result:
    """Judge alarmq itself: queue depth, failed-job growth, live workers, the scheduler, missed slots."""
    config = alarm["config"]
    check = config["check"]
    if check == "depth":
        depth = Queue(config["queue"], connection=conn).count
        return Result(ok=depth <= config["max"], at=now, value=depth, message=f"{config['queue']} holds {depth} jobs")
    if check == "failed_growth":
        failed = FailedJobRegistry(config["queue"], connection=conn).count
        past = [r for r in _results(conn, alarm["id"]) if now - r["at"] >= config["window"] and r["value"] is not None]
        base = past[0]["value"] if past else failed
        grew = failed - base
        return Result(ok=grew <= config["max"], at=now, value=failed,
                      message=f"{grew:g} more failed jobs in {config['window']}s")  # fmt: skip
    if check == "no_worker":
        serving = [w for w in Worker.all(connection=conn) if config["queue"] in w.queue_names()]
        return Result(
            ok=bool(serving), at=now, value=len(serving), message=f"{len(serving)} worker(s) on {config['queue']}"
        )
    if check == "scheduler_stale":
        status = scheduler.status(conn)
        tick = status["last_tick"]
        fresh = tick is not None and now - tick <= STALE_SCHEDULER
        message = "no scheduler leads" if tick is None else f"last tick {now - tick:.1f}s ago"
        return Result(ok=fresh, at=now, value=None if tick is None else round(now - tick, 3), message=message)
    missed = [e for e in ledger.read(conn, config["schedule"], limit=10)[0] if e["outcome"] == "missed"]
    return Result(ok=not missed, at=now, value=len(missed),
                  message=f"{len(missed)} of the last 10 slots of {config['schedule']} missed")  # fmt: skip


def _results(conn: Redis, alarm_id: str) -> list[dict[str, Any]]:
    return [json.loads(r) for r in cast(list[bytes], conn.lrange(keys.alarm_results(alarm_id), 0, 999))]


def task(config: dict[str, Any], now: float) -> Result:
    """Run a registered @check and read its answer."""
    fn = registry.get_check(config["check"])
    started = time.perf_counter()
    try:
        answer = fn.func(**config["kwargs"])
    except Exception as exc:
        return Result(ok=False, at=now, message=f"the check raised {type(exc).__name__}: {exc}"[:300])
    latency = round((time.perf_counter() - started) * 1000, 2)
    if isinstance(answer, dict):
        ok, value, message = answer.get("ok"), answer.get("value"), answer.get("message", "")
    elif isinstance(answer, tuple):
        ok, value, message = (*answer, None, "")[:3]
    else:
        ok, value, message = answer, None, ""
    value = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    return Result(ok=bool(ok), at=now, value=value, latency_ms=latency, message=str(message or "")[:300])
