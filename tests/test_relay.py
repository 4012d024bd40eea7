"""The /ws relay end to end: real web process, real worker, real WebSocket clients, both server modes."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_py
import requests
import websocket

from alarmq import events
from alarmq.embedded import EmbeddedRedis
from tests.conftest import AUTH, Processes, free_port, wait_for

pytestmark = pytest.mark.slow


class Web:
    """A running `alarmq web` and how to reach its API and its WebSocket."""

    def __init__(self, port: int, ws_port: int | None = None) -> None:
        self.api = f"http://127.0.0.1:{port}/api/v1"
        self.ws = f"ws://127.0.0.1:{ws_port or port}/ws"

    def connect(self, query: str = "", timeout: float = 10) -> websocket.WebSocket:
        """Open a WebSocket with the token."""
        ws = websocket.create_connection(f"{self.ws}{query}", header=[f"Authorization: {AUTH['Authorization']}"])
        ws.settimeout(timeout)
        return ws


def serving(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code in (200, 503)
    except requests.ConnectionError:
        return False


def start_web(processes: Processes, *args: str, env: dict[str, str] | None = None) -> Web:
    port, ws_port = free_port(), free_port()
    processes.start("web", *args, env={"PORT": str(port), "ALARMQ_WS_PORT": str(ws_port), **(env or {})})
    web = Web(port, ws_port if "waitress" in args else None)
    wait_for(lambda: serving(f"{web.api}/health"), timeout=20, what="the web process")
    return web


@pytest.fixture
def web(processes: Processes) -> Web:
    """Start a web process under gunicorn (same-origin /ws)."""
    return start_web(processes, env={"ALARMQ_WEB_THREADS": "80"})


def receive(ws: websocket.WebSocket, count: int) -> list[dict[str, Any]]:
    return [json.loads(ws.recv()) for _ in range(count)]


def job_events(ws: websocket.WebSocket, job_id: str, until: str = "job.finished") -> list[str]:
    seen: list[str] = []
    while until not in seen:
        event = json.loads(ws.recv())
        if event["data"].get("id") == job_id:
            seen.append(event["type"])
    return seen


@pytest.mark.parametrize("server", ["gunicorn", "waitress"])
def test_events_of_a_job_arrive_in_order(processes: Processes, server: str) -> None:
    web = start_web(processes, "--server", server)
    processes.start("worker")
    if server == "waitress":
        live = requests.get(f"{web.api}/live", headers=AUTH, timeout=5).json()
        assert live["same_origin"] is False and web.ws.endswith(f":{live['port']}/ws")
        assert (
            requests.get(web.ws.replace("ws://", "http://").replace("/ws", "/api/v1/health"), timeout=5).status_code
            == 404
        )
    ws = web.connect("?types=job.*")
    job = requests.post(f"{web.api}/jobs", json={"task": "echo", "kwargs": {"message": "x"}}, headers=AUTH, timeout=5)
    assert job_events(ws, job.json()["id"]) == ["job.queued", "job.started", "job.finished"]
    ws.close()


def test_unauthorised_upgrade_is_refused(web: Web) -> None:
    with pytest.raises(websocket.WebSocketBadStatusException) as excinfo:
        websocket.create_connection(web.ws)
    assert excinfo.value.status_code == 401
    with pytest.raises(websocket.WebSocketBadStatusException) as excinfo:
        websocket.create_connection(web.ws, header=["Authorization: Bearer wrong-token-123456789"])
    assert excinfo.value.status_code == 401


def test_fifty_clients_all_get_every_event(web: Web, redis: redis_py.Redis) -> None:
    clients = [web.connect("?types=bench.*") for _ in range(50)]
    sent = [events.publish(redis, "bench.tick", {"seq": i}) for i in range(20)]
    for ws in clients:
        assert [e["id"] for e in receive(ws, 20)] == [e["id"] for e in sent if e]
        ws.close()


def test_a_stalled_client_does_not_slow_the_others(processes: Processes, redis: redis_py.Redis) -> None:
    web = start_web(processes, env={"ALARMQ_WS_QUEUE": "50"})
    stalled = web.connect("?types=bench.*")
    # A small receive window, so the kernel's buffers hold little of what it is not reading.
    stalled.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    others = [web.connect("?types=bench.*", timeout=30) for _ in range(3)]
    payload = "x" * 8000
    received: dict[int, int] = {}

    def drain(i: int, ws: websocket.WebSocket) -> None:
        for _ in range(800):
            json.loads(ws.recv())
        received[i] = 800

    threads = [threading.Thread(target=drain, args=(i, ws)) for i, ws in enumerate(others)]
    for t in threads:
        t.start()
    started = time.monotonic()
    for i in range(800):  # 6.4 MB: more than the stalled socket's buffers and its 50-event queue hold
        events.publish(redis, "bench.tick", {"seq": i, "pad": payload})
    for t in threads:
        t.join(30)
    assert received == {0: 800, 1: 800, 2: 800}
    assert time.monotonic() - started < 20
    frames = []
    stalled.settimeout(10)
    while not any(f["type"] == "resync" for f in frames):
        frames.append(json.loads(stalled.recv()))
    assert len(frames) < 800  # it lost some of its own events, and was told so
    for ws in [stalled, *others]:
        ws.close()


def test_replay_since_gives_exactly_the_missed_events_then_live(web: Web, redis: redis_py.Redis) -> None:
    ws = web.connect("?types=bench.*")
    first = [events.publish(redis, "bench.tick", {"seq": i}) for i in range(3)]
    last_seen = receive(ws, 3)[-1]["id"]
    ws.close()
    missed = [events.publish(redis, "bench.tick", {"seq": i}) for i in range(3, 8)]
    ws = web.connect(f"?types=bench.*&since={last_seen}")
    assert [e["data"]["seq"] for e in receive(ws, 5)] == [3, 4, 5, 6, 7]
    live = events.publish(redis, "bench.tick", {"seq": 8})
    assert receive(ws, 1)[0]["id"] == live["id"]  # type: ignore[index]
    assert first[-1]["id"] == last_seen and missed  # type: ignore[index]
    ws.close()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """Start a Redis this test may restart."""
    server = EmbeddedRedis(tmp_path / "restartable")
    server.start()
    yield server
    server.stop()


def test_events_flow_again_after_redis_restarts(processes: Processes, own_redis: EmbeddedRedis) -> None:
    web = start_web(processes, env={"REDIS_URL": own_redis.url})
    ws = web.connect("?types=bench.*")
    conn = redis_py.Redis.from_url(own_redis.url)
    before = events.publish(conn, "bench.tick", {"seq": 1})
    assert receive(ws, 1)[0]["id"] == before["id"]  # type: ignore[index]
    own_redis.stop()
    own_redis.start()
    after = None
    deadline = time.monotonic() + 20
    ws.settimeout(0.5)
    got: list[dict[str, Any]] = []
    while not got and time.monotonic() < deadline:
        after = events.publish(conn, "bench.tick", {"seq": 2})  # the relay may still be resubscribing
        try:
            got.append(json.loads(ws.recv()))
        except websocket.WebSocketTimeoutException:
            continue
    assert got and got[0]["data"]["seq"] == 2 and after is not None
    conn.close()
    ws.close()


def test_sigterm_closes_websockets_cleanly(processes: Processes) -> None:
    web = start_web(processes)
    ws = web.connect()
    proc = processes.started[-1]
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    with pytest.raises(websocket.WebSocketConnectionClosedException):
        while True:
            ws.recv()
    assert time.monotonic() - started < 5
    assert proc.wait(15) == 0
