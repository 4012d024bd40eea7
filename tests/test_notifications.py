"""Alarm transitions notify their channels: fired and resolved once, repeats, ack, silence, racing workers."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis as redis_py
from flask.testing import FlaskClient

from alarmq import channels, keys, monitors
from alarmq.alarms import Result
from alarmq.engine import apply
from alarmq.settings import Settings
from tests.conftest import AUTH
from tests.test_channels import HookSink


@pytest.fixture(autouse=True)
def immediate_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retry deliveries at once, so one burst of the in-process worker works every attempt."""
    monkeypatch.setattr(channels, "BACKOFF_BASE", 0)


@pytest.fixture
def sink() -> Iterator[HookSink]:
    """Serve a webhook sink on a free port."""
    server = HookSink()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def setup_alarm(client: FlaskClient, hook_url: str, **fields: Any) -> None:
    created = client.post("/api/v1/channels", json={"id": "ops", "kind": "webhook",
                                                   "config": {"url": hook_url}}, headers=AUTH)  # fmt: skip
    assert created.status_code == 201, created.get_json()
    body = {"id": "db", "kind": "tcp", "config": {"host": "127.0.0.1", "port": 9}, "channels": ["ops"], **fields}
    assert client.post("/api/v1/alarms", json=body, headers=AUTH).status_code == 201


def result(ok: bool, at: float) -> Result:
    return Result(ok=ok, at=at, message="up" if ok else "connection refused")


def kinds(sink: HookSink) -> list[str]:
    return [r["json"]["kind"] for r in sink.requests]


def test_fired_and_resolved_notify_once_each(
    client: FlaskClient, redis: redis_py.Redis, settings: Settings, sink: HookSink, run_jobs: Callable[[], int]
) -> None:
    setup_alarm(client, sink.url, repeat_every=0)
    now = time.time()
    for i, ok in enumerate([True, False, False, False, True, True]):
        apply(redis, settings, "db", result(ok, now + i))
    run_jobs()
    assert kinds(sink) == ["fired", "resolved"]
    log = client.get("/api/v1/alarms/db/notifications", headers=AUTH).get_json()["notifications"]
    assert [e["outcome"] for e in log] == ["sent", "sent"]


def test_a_firing_alarm_repeats_until_acknowledged_and_silence_holds_all(
    client: FlaskClient, redis: redis_py.Redis, settings: Settings, sink: HookSink, run_jobs: Callable[[], int]
) -> None:
    setup_alarm(client, sink.url, repeat_every=60)
    now = time.time()
    apply(redis, settings, "db", result(False, now))
    apply(redis, settings, "db", result(False, now + 30))  # too soon to repeat
    apply(redis, settings, "db", result(False, now + 61))
    run_jobs()
    assert kinds(sink) == ["fired", "repeat"]
    monitors.act(redis, "db", "ack", now + 62)
    apply(redis, settings, "db", result(False, now + 200))
    run_jobs()
    assert kinds(sink) == ["fired", "repeat"]  # acknowledged: no more repeats
    monitors.act(redis, "db", "silence", now + 201, until=now + 10_000, reason="maintenance")
    apply(redis, settings, "db", result(True, now + 202))
    run_jobs()
    assert kinds(sink) == ["fired", "repeat"]  # silenced: even the resolve waits
    assert monitors.load(redis, "db")["state"] == "ok"


def test_a_delivery_that_keeps_failing_is_logged_and_announced(
    client: FlaskClient, redis: redis_py.Redis, settings: Settings, sink: HookSink, run_jobs: Callable[[], int]
) -> None:
    from alarmq import events

    setup_alarm(client, sink.url)
    sink.fail_next = 100
    apply(redis, settings, "db", result(False, time.time()))
    for _ in range(8):
        run_jobs()
    outcomes = [e["outcome"] for e in monitors.history(redis, keys.alarm_notifications("db"), 50)]
    assert outcomes[0] == "failed" and "retrying" in outcomes
    assert [e["data"]["alarm"] for e in events.read(redis, "0-0", 500, ("alarm.notification_failed",))] == ["db"]


def test_two_workers_racing_on_one_alarm_send_one_notification(
    client: FlaskClient, redis: redis_py.Redis, settings: Settings, sink: HookSink, run_jobs: Callable[[], int]
) -> None:
    setup_alarm(client, sink.url, repeat_every=0)
    barrier = threading.Barrier(6)
    at = time.time()

    def worker() -> None:
        barrier.wait()
        apply(redis, settings, "db", result(False, at))

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    run_jobs()
    assert kinds(sink) == ["fired"]
    assert len(monitors.history(redis, keys.alarm_flips("db"), 50)) == 1
