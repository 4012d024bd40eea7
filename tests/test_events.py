"""The event envelope: one shape, published and streamed together, read back and filtered."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import redis as redis_py
from flask.testing import FlaskClient

from alarmq import events, keys
from alarmq.errors import Invalid
from alarmq.web.relay import Client, newer
from tests.conftest import AUTH


def test_publish_streams_and_broadcasts_the_same_envelope(redis: redis_py.Redis) -> None:
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(keys.events_channel())
    pubsub.get_message(timeout=1)
    event = events.publish(redis, "job.finished", {"id": "j1", "result": [1, 2]})
    assert event is not None
    assert set(event) == {"id", "type", "ts", "data"}
    message = pubsub.get_message(timeout=2)
    pubsub.close()
    assert message is not None
    assert json.loads(message["data"]) == event
    assert events.read(redis, None, 10) == [event]
    assert redis.xinfo_stream(keys.events_stream())["last-generated-id"].decode() == event["id"]


def test_publish_never_raises_when_redis_is_down(tmp_path) -> None:  # type: ignore[no-untyped-def]
    down = redis_py.Redis(unix_socket_path=str(tmp_path / "none.sock"))
    assert events.publish(down, "job.started", {"id": "x"}) is None


def test_read_after_an_id_returns_exactly_the_later_events_filtered(redis: redis_py.Redis) -> None:
    published = [events.publish(redis, t, {"n": i}) for i, t in
                 enumerate(["job.queued", "alarm.fired", "job.failed", "alarm.resolved", "job.finished"])]  # fmt: skip
    ids = [e["id"] for e in published if e]
    assert [e["id"] for e in events.read(redis, ids[1], 10)] == ids[2:]
    assert [e["type"] for e in events.read(redis, "0-0", 10, ("alarm.*", "job.failed"))] == [
        "alarm.fired", "job.failed", "alarm.resolved"]  # fmt: skip
    assert [e["data"]["n"] for e in events.read(redis, None, 2)] == [3, 4]
    assert [e["data"]["n"] for e in events.read(redis, "0-0", 2, ("job.*",))] == [0, 2]


def test_stream_is_capped(redis: redis_py.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "STREAM_MAXLEN", 10)
    for i in range(300):
        events.publish(redis, "job.queued", {"n": i})
    assert redis.xlen(keys.events_stream()) < 300


@pytest.mark.parametrize("bad", ["Job.*", "job queued", "x" * 80, "job.;drop"])
def test_bad_type_filters_are_refused(bad: str) -> None:
    with pytest.raises(Invalid, match="types must be event types or patterns"):
        events.parse_types(bad)


def test_event_ids_compare_in_stream_order() -> None:
    assert newer("1700000000001-0", "1700000000000-5")
    assert newer("1700000000000-10", "1700000000000-9")
    assert not newer("1700000000000-1", "1700000000000-1")
    assert newer("5-0", None)


def test_a_full_client_queue_drops_only_that_clients_events() -> None:
    slow, fast = Client((), size=2), Client(("job.*",), size=100)
    for i in range(5):
        slow.offer(f"{i}-0", "job.queued", "{}")
        fast.offer(f"{i}-0", "job.queued", "{}")
    fast.offer("9-0", "alarm.fired", "{}")
    assert slow.behind and slow.queue.qsize() == 2
    assert not fast.behind and fast.queue.qsize() == 5  # the alarm was filtered out


def test_rest_events_filter_by_type(client: FlaskClient, redis: redis_py.Redis, run_jobs: Callable[[], int]) -> None:
    job = client.post("/api/v1/jobs", json={"task": "echo", "kwargs": {"message": "x"}}, headers=AUTH).get_json()
    run_jobs()
    body = client.get("/api/v1/events?types=job.*", headers=AUTH).get_json()
    mine = [e["type"] for e in body["events"] if e["data"].get("id") == job["id"]]
    assert mine == ["job.queued", "job.started", "job.finished"]
    assert client.get("/api/v1/events?types=Bad", headers=AUTH).status_code == 422


def test_job_events_come_from_the_worker_for_any_enqueuer(redis: redis_py.Redis, run_jobs: Callable[[], int]) -> None:
    from rq import Queue

    from alarmq import tasks

    plain = Queue("default", connection=redis, serializer="rq.serializers.JSONSerializer")
    job = plain.enqueue(tasks.echo, "plain rq client")  # not through alarmq at all
    failing = plain.enqueue(tasks.sleep, -1)
    run_jobs()
    seen = [(e["type"], e["data"]["id"]) for e in events.read(redis, "0-0", 100, ("job.*",))]
    assert ("job.started", job.id) in seen and ("job.finished", job.id) in seen
    assert ("job.failed", failing.id) in seen
    [failed] = [e for e in events.read(redis, "0-0", 100, ("job.failed",))]
    assert failed["data"]["error"] == "ValueError: seconds must be zero or more"


def test_live_says_where_the_websocket_is(client: FlaskClient) -> None:
    assert client.get("/api/v1/live", headers=AUTH).get_json() == {"path": "/ws", "port": None, "same_origin": True}


def test_plain_http_get_of_ws_is_refused_before_any_upgrade(client: FlaskClient) -> None:
    assert client.get("/ws").status_code == 401
    response = client.get("/ws", headers=AUTH)
    assert response.status_code == 400
    assert "WebSocket endpoint" in response.get_json()["error"]
    assert client.get("/ws?since=nope", headers=AUTH).status_code == 400


def test_the_outbox_publishes_in_order_and_flushes_on_close(redis: redis_py.Redis) -> None:
    outbox = events.Outbox(redis)
    for i in range(500):
        outbox.put("bench.tick", {"seq": i})
    outbox.close()
    assert [e["data"]["seq"] for e in events.read(redis, "0-0", 1000)] == list(range(500))
    assert not outbox.thread.is_alive()


def test_events_publish_when_redis_is_down_lose_nothing_else(tmp_path) -> None:  # type: ignore[no-untyped-def]
    down = redis_py.Redis(unix_socket_path=str(tmp_path / "none.sock"))
    assert events.publish_many(down, [("job.started", {"id": "x"})]) == 0
