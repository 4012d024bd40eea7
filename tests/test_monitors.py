"""Alarms end to end against real local targets: every kind, every transition, ack, silence, races."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis as redis_py
from flask.testing import FlaskClient

from alarmq import engine, events, keys, monitors, registry
from alarmq.alarms import Result
from alarmq.settings import Settings
from tests import tasks as test_tasks
from tests.conftest import AUTH


class Target(http.server.BaseHTTPRequestHandler):
    mode = "up"  # up | down | slow | wrong-body

    def do_GET(self) -> None:
        if Target.mode == "slow":
            time.sleep(1.5)
        status = 503 if Target.mode == "down" else 200
        body = b"all good" if Target.mode != "wrong-body" else b"maintenance page"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def target() -> Iterator[str]:
    """Serve an HTTP target that tests switch up, down, slow or wrong-body."""
    Target.mode = "up"
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Target)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def make(client: FlaskClient, **body: Any) -> dict[str, Any]:
    response = client.post("/api/v1/alarms", json=body, headers=AUTH)
    assert response.status_code == 201, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def check(redis: redis_py.Redis, settings: Settings, *ids: str) -> dict[str, Any]:
    return engine.check_batch(redis, settings, list(ids))


def state(client: FlaskClient, alarm_id: str) -> str:
    return client.get(f"/api/v1/alarms/{alarm_id}", headers=AUTH).get_json()["state"]  # type: ignore[no-any-return]


def flips(client: FlaskClient, alarm_id: str) -> list[str]:
    entries = client.get(f"/api/v1/alarms/{alarm_id}/flips", headers=AUTH).get_json()["flips"]
    return [f"{f['old']}>{f['new']}" for f in reversed(entries)]


def test_http_alarm_fires_on_down_slow_and_wrong_body_and_resolves(
    client: FlaskClient, redis: redis_py.Redis, settings: Settings, target: str
) -> None:
    make(client, id="home", kind="http", interval=30, failures_to_fire=2,
         config={"url": target, "expect_status": [200], "timeout": 1, "body_contains": "good"})  # fmt: skip
    check(redis, settings, "home")
    assert state(client, "home") == "ok"
    Target.mode = "down"
    check(redis, settings, "home")
    assert state(client, "home") == "pending"
    check(redis, settings, "home")
    shown = client.get("/api/v1/alarms/home", headers=AUTH).get_json()
    assert shown["state"] == "firing" and shown["since"] is not None
    assert shown["last_result"]["message"] == "expected HTTP 200, got 503"
    for mode, message in (("slow", "no answer within 1s"), ("wrong-body", "body does not contain 'good'")):
        Target.mode = mode
        check(redis, settings, "home")
        assert monitors.load(redis, "home")["last_result"]["message"] == message
    Target.mode = "up"
    check(redis, settings, "home")
    assert flips(client, "home") == ["unknown>ok", "ok>pending", "pending>firing", "firing>ok"]
    types = [e["type"] for e in events.read(redis, "0-0", 200, ("alarm.fired", "alarm.resolved"))]
    assert types == ["alarm.fired", "alarm.resolved"]
    assert shown["uptime"]["24h"] == pytest.approx(1 / 3, abs=1e-5)


def test_tcp_alarm_sees_a_listener_open_and_closed(
    client: FlaskClient, redis: redis_py.Redis, settings: Settings
) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    make(client, id="db", kind="tcp", config={"host": "127.0.0.1", "port": port, "timeout": 1})
    check(redis, settings, "db")
    assert state(client, "db") == "ok"
    listener.close()
    check(redis, settings, "db")
    assert state(client, "db") == "firing"
    assert "Connection refused" in monitors.load(redis, "db")["last_result"]["message"]


def test_heartbeat_fires_without_pings_and_recovers_on_the_next(
    client: FlaskClient, redis: redis_py.Redis, settings: Settings
) -> None:
    created = make(client, id="backup", kind="heartbeat", config={"period": 60, "grace": 30})
    ping_url = created["ping_url"]
    assert ping_url.startswith("/api/v1/heartbeats/") and "ping_token" not in created
    redis.hset(keys.alarm("backup"), "last_ping", time.time() - 100)  # the last ping was 100 s ago
    check(redis, settings, "backup")
    assert state(client, "backup") == "firing"
    assert client.post(ping_url).status_code == 200  # no token needed: the URL is the secret
    assert state(client, "backup") == "ok"
    assert client.get(f"{ping_url}/fail").status_code == 200
    assert state(client, "backup") == "firing"
    assert client.post("/api/v1/heartbeats/not-a-token").status_code == 404


def test_threshold_fires_above_and_resolves_below_the_recover_bound(client: FlaskClient, redis: redis_py.Redis) -> None:
    make(client, id="cpu", kind="threshold", failures_to_fire=2,
         config={"metric": "cpu.load", "above": 90, "recover": 70})  # fmt: skip

    def push(value: float) -> None:
        assert client.post("/api/v1/metrics/cpu.load", json={"value": value}, headers=AUTH).status_code == 202

    for value in (50, 95, 96):
        push(value)
    assert state(client, "cpu") == "firing"
    push(80)  # below the firing bound but above the recover bound: stays firing (hysteresis)
    assert state(client, "cpu") == "firing"
    push(60)
    assert flips(client, "cpu") == ["unknown>ok", "ok>pending", "pending>firing", "firing>ok"]
    assert client.post("/api/v1/metrics/cpu.load", json={"value": "high"}, headers=AUTH).status_code == 422
    assert client.post("/api/v1/metrics/cpu.load", json={"value": 1}).status_code == 401


def test_queue_alarms_watch_alarmq_itself(client: FlaskClient, redis: redis_py.Redis, settings: Settings) -> None:
    make(client, id="backlog", kind="queue", config={"check": "depth", "queue": "default", "max": 2})
    make(client, id="workers", kind="queue", config={"check": "no_worker", "queue": "default"})
    make(client, id="sched", kind="queue", config={"check": "scheduler_stale"})
    for i in range(3):
        client.post("/api/v1/jobs", json={"task": "echo", "kwargs": {"message": str(i)}}, headers=AUTH)
    check(redis, settings, "backlog", "workers", "sched")
    assert [state(client, a) for a in ("backlog", "workers", "sched")] == ["firing", "firing", "firing"]
    assert monitors.load(redis, "backlog")["last_result"]["message"] == "default holds 3 jobs"


def test_task_alarm_runs_a_registered_check(client: FlaskClient, redis: redis_py.Redis, settings: Settings) -> None:
    registry.load(["tests.tasks"])
    make(client, id="disk", kind="task", config={"check": "disk_ok", "kwargs": {"limit": 80}})
    test_tasks.DISK["used"] = 50
    check(redis, settings, "disk")
    assert state(client, "disk") == "ok"
    test_tasks.DISK["used"] = 95
    check(redis, settings, "disk")
    assert monitors.load(redis, "disk")["last_result"] | {"at": 0} == {
        "ok": False, "at": 0, "value": 95.0, "latency_ms": monitors.load(redis, "disk")["last_result"]["latency_ms"],
        "message": "disk at 95%"}  # fmt: skip


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"id": "x", "kind": "smtp"}, "kind must be one of"),
        ({"id": "x", "kind": "http", "config": {"url": "ftp://x"}}, "config.url must start with http"),
        ({"id": "x", "kind": "http", "config": {"url": "http://x", "expect_status": [99]}}, "config.expect_status[]"),
        ({"id": "x", "kind": "http", "config": {"url": "http://x", "colour": 1}}, "config has no field 'colour'"),
        ({"id": "x", "kind": "tcp", "config": {"host": "h", "port": 70000}}, "config.port must be"),
        ({"id": "x", "kind": "heartbeat", "config": {}}, "config.period must be"),
        ({"id": "x", "kind": "threshold", "config": {"metric": "m", "above": 1, "below": 0}}, "exactly one of above"),
        ({"id": "x", "kind": "threshold", "config": {"metric": "m", "above": 50, "recover": 60}}, "config.recover"),
        ({"id": "x", "kind": "task", "config": {"check": "os.system"}}, "not a registered @check"),
        ({"id": "x", "kind": "queue", "config": {"check": "vibes"}}, "config.check must be one of"),
        ({"id": "x", "kind": "tcp", "interval": 0, "config": {"host": "h", "port": 1}}, "interval must be"),
        (
            {"id": "x", "kind": "tcp", "channels": ["nope"], "config": {"host": "h", "port": 1}},
            "channels[0] 'nope' is not a channel",
        ),
        ({"id": "X!", "kind": "tcp", "config": {"host": "h", "port": 1}}, "id must be"),
    ],
)
def test_bad_alarms_are_refused_naming_the_field(
    client: FlaskClient, redis: redis_py.Redis, body: dict[str, Any], message: str
) -> None:
    response = client.post("/api/v1/alarms", json=body, headers=AUTH)
    assert response.status_code == 422
    assert message in response.get_json()["error"]
    assert redis.keys("alarmq:alarm*") == []


def test_ack_and_silence(client: FlaskClient, redis: redis_py.Redis, settings: Settings, target: str) -> None:
    make(client, id="home", kind="http", config={"url": target})
    assert client.post("/api/v1/alarms/home/ack", headers=AUTH).status_code == 409  # not firing
    Target.mode = "down"
    check(redis, settings, "home")
    assert client.post("/api/v1/alarms/home/ack", headers=AUTH).get_json()["acked"] is True
    silenced = client.post("/api/v1/alarms/home/silence", json={"seconds": 600, "reason": "deploy"}, headers=AUTH)
    assert silenced.get_json()["silenced"] is True and silenced.get_json()["silence_reason"] == "deploy"
    assert client.post("/api/v1/alarms/home/unsilence", headers=AUTH).get_json()["silenced"] is False
    Target.mode = "up"
    check(redis, settings, "home")
    assert monitors.load(redis, "home")["acked"] is False  # cleared on recovery
    assert [e["type"] for e in events.read(redis, "0-0", 100, ("alarm.acked", "alarm.silenced"))] == [
        "alarm.acked", "alarm.silenced", "alarm.silenced"]  # fmt: skip


def test_disable_enable_and_check_now(
    client: FlaskClient, redis: redis_py.Redis, settings: Settings, target: str, run_jobs
) -> None:  # type: ignore[no-untyped-def]
    make(client, id="home", kind="http", interval=3600, config={"url": target})
    assert redis.zscore(keys.alarms_due(), "home") is not None
    assert client.post("/api/v1/alarms/home/disable", headers=AUTH).get_json()["state"] == "disabled"
    assert redis.zscore(keys.alarms_due(), "home") is None
    assert client.post("/api/v1/alarms/home/enable", headers=AUTH).get_json()["state"] == "unknown"
    assert client.post("/api/v1/alarms/home/check", headers=AUTH).status_code == 202
    run_jobs()
    assert state(client, "home") == "ok"


def test_two_workers_racing_on_one_alarm_flip_it_once(redis: redis_py.Redis, client: FlaskClient) -> None:
    make(client, id="home", kind="tcp", config={"host": "127.0.0.1", "port": 9})
    barrier = threading.Barrier(8)
    flipped: list[bool] = []

    def race() -> None:
        barrier.wait()
        _, flip, _ = monitors.record(redis, "home", Result(ok=False, at=time.time(), message="down"), time.time())
        flipped.append(flip is not None)

    threads = [threading.Thread(target=race) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert flipped.count(True) == 1
    assert len(redis.lrange(keys.alarm_results("home"), 0, -1)) == 8
    assert len(events.read(redis, "0-0", 100, ("alarm.fired",))) == 1


def test_the_due_set_claims_each_alarm_once_and_reschedules_it(
    client: FlaskClient, redis: redis_py.Redis, settings: Settings
) -> None:
    for i in range(5):
        make(client, id=f"a{i}", kind="tcp", interval=60, config={"host": "127.0.0.1", "port": 9})
    now = time.time() + 1
    first = engine.claim_due(redis, now)
    assert sorted(a for a, _ in first) == [f"a{i}" for i in range(5)]
    assert engine.claim_due(redis, now) == []  # a second claimer at the same moment gets nothing
    assert all(now < redis.zscore(keys.alarms_due(), f"a{i}") <= now + 60 for i in range(5))
    jobs = engine.enqueue_batches(redis, first)
    assert len(jobs) == 1 and jobs[0].args[0] == [a for a, _ in first]


def test_changing_the_interval_takes_effect_at_once(client: FlaskClient, redis: redis_py.Redis) -> None:
    make(client, id="home", kind="tcp", interval=3600, config={"host": "127.0.0.1", "port": 9})
    engine.claim_due(redis, time.time() + 1)  # checked: next due in an hour
    client.patch("/api/v1/alarms/home", json={"interval": 5}, headers=AUTH)
    assert redis.zscore(keys.alarms_due(), "home") <= time.time()  # due now
    assert redis.hget(keys.alarms_intervals(), "home") == b"5"


@pytest.mark.slow
def test_a_down_target_is_firing_within_one_interval_with_real_processes(
    client: FlaskClient, redis: redis_py.Redis, processes: Any, target: str
) -> None:
    from tests.conftest import wait_for

    processes.start("scheduler")
    processes.start("worker", "--concurrency", "2")
    make(client, id="home", kind="http", interval=1, config={"url": target, "timeout": 1})
    wait_for(lambda: state(client, "home") == "ok", timeout=15, what="the first check")
    Target.mode = "down"
    went_down = time.time()
    wait_for(lambda: state(client, "home") == "firing", timeout=10, what="the alarm to fire")
    assert time.time() - went_down < 1 + 1.5  # one interval plus a second, with a little room for CI
    fired = events.read(redis, "0-0", 500, ("alarm.fired",))
    assert [e["data"]["id"] for e in fired] == ["home"]


def test_renaming_does_not_reschedule_but_a_new_interval_does(client: FlaskClient, redis: redis_py.Redis) -> None:
    make(client, id="home", kind="tcp", interval=3600, config={"host": "127.0.0.1", "port": 9})
    engine.claim_due(redis, time.time() + 1)
    due = redis.zscore(keys.alarms_due(), "home")
    client.patch("/api/v1/alarms/home", json={"name": "Home page"}, headers=AUTH)
    assert redis.zscore(keys.alarms_due(), "home") == due


def test_a_heartbeat_coming_back_starts_a_fresh_period(
    client: FlaskClient, redis: redis_py.Redis, settings: Settings
) -> None:
    make(client, id="backup", kind="heartbeat", enabled=False, config={"period": 60})
    redis.hset(keys.alarm("backup"), "last_ping", time.time() - 3600)
    client.post("/api/v1/alarms/backup/enable", headers=AUTH)
    check(redis, settings, "backup")
    assert state(client, "backup") == "ok"


def test_silence_must_end_in_the_future(client: FlaskClient, redis: redis_py.Redis) -> None:
    make(client, id="db", kind="tcp", config={"host": "127.0.0.1", "port": 9})
    with pytest.raises(Exception, match="must end in the future"):
        monitors.act(redis, "db", "silence", time.time(), until=time.time() - 1)


def test_uptime_comes_from_hourly_counters_over_30_days(client: FlaskClient, redis: redis_py.Redis) -> None:
    make(client, id="db", kind="tcp", config={"host": "127.0.0.1", "port": 9})
    now = time.time()
    for days_ago, ok in ((40, False), (3, False), (3, True), (0, True)):
        at = now - days_ago * 86400
        monitors.record(redis, "db", Result(ok=ok, at=at, message="x"), at)
    assert monitors.uptime(redis, "db", now) == {"24h": 1.0, "7d": pytest.approx(2 / 3, abs=1e-5),
                                                 "30d": pytest.approx(2 / 3, abs=1e-5)}  # fmt: skip
    assert len(redis.hgetall(keys.alarm_uptime("db"))) == 4  # two hours kept; the 40-day-old one dropped
    listed = client.get("/api/v1/alarms", headers=AUTH).get_json()["alarms"]
    assert [a["uptime"] for a in listed] == [monitors.uptime(redis, "db", time.time())]
