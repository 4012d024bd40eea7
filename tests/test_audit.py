"""The audit log: every change through the API, the page and the CLI, with who, what, before and after."""

from __future__ import annotations

import getpass
from typing import Any

import redis as redis_py
from click.testing import CliRunner
from flask.testing import FlaskClient

from alarmq import audit, auth, events, keys
from alarmq.cli import main
from tests.conftest import AUTH
from tests.test_auth import bearer, everything_in, log_in

TICK = {"id": "tick", "task": "echo", "kwargs": {"message": "t"}, "interval": 60}


def entries(client: FlaskClient, **params: Any) -> list[dict[str, Any]]:
    response = client.get("/api/v1/audit", headers=AUTH, query_string=params)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["entries"]  # type: ignore[no-any-return]


def test_a_schedule_patch_records_who_what_before_after_and_why(client: FlaskClient, redis: redis_py.Redis) -> None:
    assert client.post("/api/v1/schedules", json=TICK, headers=AUTH).status_code == 201
    ops = bearer(auth.add_token(redis, "ops", "operator"))
    response = client.patch("/api/v1/schedules/tick", json={"interval": 30},
                            headers={**ops, "X-Audit-Reason": "the backlog grows"})  # fmt: skip
    assert response.status_code == 200

    newest, created = entries(client)[:2]
    assert created["action"] == "schedule.create" and created["who"] == "admin" and created["before"] is None
    assert created["after"]["interval"] == 60
    assert newest["who"] == "ops"
    assert newest["via"] == "api"
    assert newest["action"] == "schedule.update"
    assert newest["target"] == "schedule:tick"
    assert newest["reason"] == "the backlog grows"
    assert newest["before"]["interval"] == 60 and newest["after"]["interval"] == 30
    assert newest["before"]["kwargs"] == {"message": "t"} and newest["after"]["enabled"] is True
    assert newest["request"] == {"method": "PATCH", "path": "/api/v1/schedules/tick", "status": 200}
    assert created["ts"] <= newest["ts"]


def test_a_job_enqueue_records_the_job(client: FlaskClient, redis: redis_py.Redis) -> None:
    ops = bearer(auth.add_token(redis, "ops", "operator"))
    job = client.post("/api/v1/jobs", json={"task": "echo", "kwargs": {"message": "hi"}}, headers=ops).get_json()
    (entry,) = entries(client)
    assert (entry["who"], entry["action"], entry["target"]) == ("ops", "job.enqueue", f"job:{job['id']}")
    assert entry["before"] is None
    assert entry["after"] == {"id": job["id"], "task": "echo", "kwargs": {"message": "hi"}, "status": "queued",
                              "queue": "default", "source": "api"}  # fmt: skip


def test_actions_and_deletes_are_recorded(client: FlaskClient) -> None:
    client.post("/api/v1/schedules", json=TICK, headers=AUTH)
    client.post("/api/v1/schedules/tick/pause", json={"seconds": 600}, headers=AUTH)
    run = client.post("/api/v1/schedules/tick/run", headers=AUTH).get_json()
    client.post("/api/v1/scheduler/reload", headers=AUTH)
    client.delete("/api/v1/schedules/tick", headers=AUTH)
    found = entries(client)
    assert [(e["action"], e["target"]) for e in found] == [
        ("schedule.delete", "schedule:tick"),
        ("scheduler.reload", "scheduler"),
        ("schedule.run", "schedule:tick"),
        ("schedule.pause", "schedule:tick"),
        ("schedule.create", "schedule:tick"),
    ]
    deleted, _, ran, paused, _ = found
    assert deleted["before"]["id"] == "tick" and deleted["after"] is None
    assert ran["request"]["job"] == run["id"]
    assert paused["before"]["paused_until"] is None and paused["after"]["paused_until"] is not None


def test_refused_changes_and_reads_record_nothing(client: FlaskClient, redis: redis_py.Redis) -> None:
    viewer = bearer(auth.add_token(redis, "v", "viewer"))
    assert client.post("/api/v1/schedules", json=TICK, headers=viewer).status_code == 403
    assert client.post("/api/v1/schedules", json={**TICK, "interval": 0}, headers=AUTH).status_code == 422
    assert client.patch("/api/v1/schedules/nope", json={"interval": 5}, headers=AUTH).status_code == 404
    client.get("/api/v1/schedules", headers=AUTH)
    client.post("/api/v1/metrics/disk.used", json={"value": 3}, headers=AUTH)  # data, not a change
    assert entries(client) == []


def test_snapshots_never_hold_secrets(client: FlaskClient, redis: redis_py.Redis) -> None:
    password = "smtp-password-5f3a9c"
    mail = {"id": "mail", "kind": "email", "config": {"host": "127.0.0.1", "sender": "a@example.com",
            "to": ["b@example.com"], "username": "u", "password": password}}  # fmt: skip
    assert client.post("/api/v1/channels", json=mail, headers=AUTH).status_code == 201
    beat = {"id": "beat", "kind": "heartbeat", "interval": 60, "config": {"period": 60, "grace": 10}}
    ping_url = client.post("/api/v1/alarms", json=beat, headers=AUTH).get_json()["ping_url"]
    secret = client.post("/api/v1/tokens", json={"name": "ci", "role": "viewer"}, headers=AUTH).get_json()["token"]

    token_entry, alarm_entry, channel_entry = entries(client)
    assert channel_entry["after"]["config"]["password"] == "***"
    assert "ping_token" not in alarm_entry["after"]
    assert token_entry["action"] == "token.add"
    assert token_entry["after"] == {"name": "ci", "role": "viewer", "created_at": token_entry["after"]["created_at"],
                                    "last_used": None}  # fmt: skip
    log = b"".join(f for _, fields in redis.xrange(keys.audit_log()) for f in fields.values())
    assert password.encode() not in log
    assert ping_url.rsplit("/", 1)[1].encode() not in log
    assert secret.encode() not in everything_in(redis)


def test_changes_through_the_page_are_via_page(client: FlaskClient, redis: redis_py.Redis) -> None:
    csrf = log_in(client, auth.add_token(redis, "alice", "operator"))
    assert client.post("/api/v1/schedules", json=TICK, headers={"X-CSRF-Token": csrf}).status_code == 201
    created, login = entries(client)[:2]
    assert (login["who"], login["action"], login["via"]) == ("alice", "session.login", "page")
    assert (created["who"], created["action"], created["via"]) == ("alice", "schedule.create", "page")


def test_rq_dashboard_changes_are_recorded(client: FlaskClient) -> None:
    assert client.post("/rq/queue/default/queued/empty", headers=AUTH).status_code == 200
    (entry,) = entries(client)
    assert (entry["action"], entry["target"], entry["who"]) == ("rq-dashboard.empty_queue", "queue:default/queued",
                                                                 "admin")  # fmt: skip


def test_the_cli_records_changes_as_the_os_user(runner: CliRunner, client: FlaskClient) -> None:
    assert runner.invoke(main, ["schedules", "add", "tick", "echo", "message=t", "--every", "1m"]).exit_code == 0
    assert runner.invoke(main, ["schedules", "set", "tick", "--every", "30s"]).exit_code == 0
    assert runner.invoke(main, ["schedules", "pause", "tick", "--for", "10m"]).exit_code == 0
    job_id = runner.invoke(main, ["enqueue", "echo", "message=x"]).stdout.strip()
    assert runner.invoke(main, ["cancel", job_id]).exit_code == 0
    assert runner.invoke(main, ["schedules", "rm", "tick"]).exit_code == 0
    assert runner.invoke(main, ["schedules", "rm", "tick"]).exit_code == 3  # refused: nothing recorded

    found = entries(client)
    assert {e["via"] for e in found} == {"cli"} and {e["who"] for e in found} == {getpass.getuser()}
    assert [e["action"] for e in found] == [
        "schedule.delete",
        "job.cancel",
        "job.enqueue",
        "schedule.pause",
        "schedule.update",
        "schedule.create",
    ]
    update = found[4]
    assert update["before"]["interval"] == 60 and update["after"]["interval"] == 30
    cancel = found[1]
    assert cancel["target"] == f"job:{job_id}"
    assert cancel["before"]["status"] == "queued" and cancel["after"]["status"] == "canceled"


def test_pages_of_the_log_go_newest_first(client: FlaskClient, redis: redis_py.Redis) -> None:
    for i in range(5):
        audit.record(redis, "someone", "thing.poke", f"thing:{i}", None, {"n": i}, via="cli")
    first = client.get("/api/v1/audit?limit=2", headers=AUTH).get_json()
    assert [e["target"] for e in first["entries"]] == ["thing:4", "thing:3"]
    second = client.get(f"/api/v1/audit?limit=2&cursor={first['next_cursor']}", headers=AUTH).get_json()
    assert [e["target"] for e in second["entries"]] == ["thing:2", "thing:1"]
    third = client.get(f"/api/v1/audit?limit=2&cursor={second['next_cursor']}", headers=AUTH).get_json()
    assert [e["target"] for e in third["entries"]] == ["thing:0"] and third["next_cursor"] is None
    assert client.get("/api/v1/audit?cursor=0-0", headers=AUTH).get_json() == {"entries": [], "next_cursor": None}
    assert client.get("/api/v1/audit?cursor=bogus", headers=AUTH).status_code == 422
    assert client.get("/api/v1/audit?limit=0", headers=AUTH).status_code == 422


def test_viewers_read_the_log(client: FlaskClient, redis: redis_py.Redis) -> None:
    audit.record(redis, "someone", "thing.poke", "thing:1", None, None, via="cli")
    viewer = bearer(auth.add_token(redis, "v", "viewer"))
    assert client.get("/api/v1/audit", headers=viewer).get_json()["entries"][0]["action"] == "thing.poke"
    assert client.get("/api/v1/audit").status_code == 401


def test_each_entry_is_announced_without_its_snapshots(redis: redis_py.Redis) -> None:
    entry = audit.record(redis, "ops", "schedule.update", "schedule:x", {"a": 1}, {"a": 2}, "why", via="cli")
    (event,) = [e for e in events.read(redis, None, 10) if e["type"] == "audit.recorded"]
    assert event["data"] == {"id": entry["id"], "who": "ops", "via": "cli", "action": "schedule.update",
                             "target": "schedule:x"}  # fmt: skip


def test_the_log_is_capped(redis: redis_py.Redis, monkeypatch: Any) -> None:
    monkeypatch.setattr(audit, "MAXLEN", 10)
    for i in range(300):
        audit.record(redis, "x", "thing.poke", f"thing:{i}", None, None, via="cli")
    assert redis.xlen(keys.audit_log()) < 300
    newest, _ = audit.read(redis, 1)
    assert newest[0]["target"] == "thing:299"
