"""Schedules over HTTP: create, edit, override, pause, run now, preview, and refusing bad input."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis as redis_py
from flask.testing import FlaskClient

from alarmq import keys, ledger, registry, schedules
from tests.conftest import AUTH

TICK = {"id": "tick", "task": "echo", "kwargs": {"message": "t"}, "interval": 1}
NIGHTLY = {"id": "nightly", "task": "echo", "kwargs": {"message": "n"}, "cron": "0 3 * * *",
           "timezone": "Europe/Warsaw"}  # fmt: skip


@pytest.fixture
def declared() -> Iterator[None]:
    """Declare a schedule in code for the test, as a task module would."""
    registry.schedule("report", task="echo", kwargs={"message": "r"}, interval="5m", description="every 5 minutes")
    yield
    registry._DECLARED.pop("report", None)


def post(client: FlaskClient, path: str, body: object = None) -> tuple[int, dict]:
    response = client.post(f"/api/v1{path}", json=body, headers=AUTH)
    return response.status_code, response.get_json()


def test_create_interval_and_cron_schedules(client: FlaskClient, redis: redis_py.Redis) -> None:
    status, tick = post(client, "/schedules", TICK)
    assert status == 201
    assert tick["trigger"] == "every 1s" and tick["source"] == "api" and tick["overridden"] == []
    status, nightly = post(client, "/schedules", NIGHTLY)
    assert status == 201
    assert nightly["trigger"] == "cron 0 3 * * * (Europe/Warsaw)"
    assert len(nightly["next_fire_times"]) == 3
    stored = schedules.load(redis, "nightly")
    assert (stored["cron"], stored["timezone"], stored["queue"]) == ("0 3 * * *", "Europe/Warsaw", "scheduled")
    listed = client.get("/api/v1/schedules", headers=AUTH).get_json()["schedules"]
    assert [s["id"] for s in listed] == ["nightly", "tick"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({**TICK, "id": "Bad Id"}, "id must be 1-64 of a-z"),
        ({**TICK, "task": "os.system"}, "unknown task 'os.system'"),
        ({**TICK, "kwargs": {}}, "needs argument 'message'"),
        ({**TICK, "interval": 0}, "interval must be a whole number of seconds"),
        ({**NIGHTLY, "cron": "0 25 * * *"}, "cron '0 25 * * *' is not valid"),
        ({**NIGHTLY, "timezone": "Europe/Atlantis"}, "timezone 'Europe/Atlantis' is not a known IANA zone"),
        ({**TICK, "cron": "* * * * *"}, "give exactly one of interval"),
        ({**TICK, "misfire": "twice"}, "misfire must be one of skip, once"),
        ({**TICK, "overlap": "queue"}, "overlap must be one of skip, allow"),
        ({**TICK, "queue": "nowhere"}, "queue must be one of"),
        ({**TICK, "enabled": "yes"}, "enabled must be true or false"),
        ({**TICK, "every": 5}, "unknown field 'every'"),
    ],
)
def test_bad_schedule_is_refused_and_nothing_is_stored(
    client: FlaskClient, redis: redis_py.Redis, body: dict, message: str
) -> None:
    status, response = post(client, "/schedules", body)
    assert status == 422
    assert message in response["error"]
    assert redis.keys("alarmq:schedule*") == []


def test_duplicate_id_is_409_and_keeps_the_original(client: FlaskClient, redis: redis_py.Redis) -> None:
    post(client, "/schedules", TICK)
    status, response = post(client, "/schedules", {**TICK, "interval": 60})
    assert status == 409
    assert "exists" in response["error"]
    assert schedules.load(redis, "tick")["interval"] == 1


def test_patch_retimes_and_switches_trigger_kind(client: FlaskClient, redis: redis_py.Redis) -> None:
    post(client, "/schedules", TICK)
    response = client.patch("/api/v1/schedules/tick", json={"interval": 5}, headers=AUTH)
    assert response.status_code == 200 and response.get_json()["interval"] == 5
    response = client.patch("/api/v1/schedules/tick", json={"cron": "*/5 * * * *"}, headers=AUTH)
    assert response.get_json()["interval"] is None and response.get_json()["cron"] == "*/5 * * * *"
    assert redis.sismember(keys.schedules_dirty(), "tick")  # the leader will reconcile it


def test_invalid_retime_changes_nothing(client: FlaskClient, redis: redis_py.Redis) -> None:
    post(client, "/schedules", NIGHTLY)
    before = redis.hgetall(keys.schedule("nightly"))
    for change in ({"cron": "61 * * * *"}, {"timezone": "Nowhere/City"}, {"interval": -1}, {"kwargs": {"x": 1}}):
        response = client.patch("/api/v1/schedules/nightly", json=change, headers=AUTH)
        assert response.status_code == 422, change
        assert response.get_json()["error"]
    assert redis.hgetall(keys.schedule("nightly")) == before


def test_declared_schedule_syncs_and_edits_become_overrides_until_reset(
    client: FlaskClient, redis: redis_py.Redis, declared: None
) -> None:
    report = schedules.sync_declared(redis, time.time())
    assert report["created"] == ["check_alarms", "report"]  # alarmq's own, and the test's
    assert schedules.sync_declared(redis, time.time()) == {"created": [], "updated": [], "removed": []}
    shown = client.get("/api/v1/schedules/report", headers=AUTH).get_json()
    assert (shown["source"], shown["interval"], shown["overridden"]) == ("code", 300, [])

    client.patch("/api/v1/schedules/report", json={"interval": 60, "enabled": False}, headers=AUTH)
    schedules.sync_declared(redis, time.time())  # a restart keeps the operator's edit
    shown = client.get("/api/v1/schedules/report", headers=AUTH).get_json()
    assert (shown["interval"], shown["enabled"], shown["overridden"]) == (60, False, ["enabled", "interval"])

    status, reset = post(client, "/schedules/report/reset")
    assert status == 200
    assert (reset["interval"], reset["enabled"], reset["overridden"]) == (300, True, [])


def test_removed_declaration_disappears_but_api_schedules_stay(
    client: FlaskClient, redis: redis_py.Redis, declared: None
) -> None:
    schedules.sync_declared(redis, time.time())
    post(client, "/schedules", TICK)
    registry._DECLARED.pop("report")
    assert schedules.sync_declared(redis, time.time())["removed"] == ["report"]
    assert [s["id"] for s in schedules.list_all(redis)] == ["check_alarms", "tick"]


def test_reset_of_an_api_schedule_is_409(client: FlaskClient) -> None:
    post(client, "/schedules", TICK)
    status, response = post(client, "/schedules/tick/reset")
    assert status == 409
    assert "no declared default" in response["error"]


def test_pause_for_seconds_or_until_and_resume(client: FlaskClient, redis: redis_py.Redis) -> None:
    post(client, "/schedules", TICK)
    status, paused = post(client, "/schedules/tick/pause", {"seconds": 600})
    assert status == 200 and paused["paused"] is True
    assert schedules.load(redis, "tick")["paused_until"] > time.time() + 590
    status, _ = post(client, "/schedules/tick/resume")
    assert status == 200 and schedules.load(redis, "tick")["paused_until"] is None
    status, response = post(client, "/schedules/tick/resume")
    assert status == 409 and "not paused" in response["error"]
    status, paused = post(client, "/schedules/tick/pause", {"until": "2099-01-01T00:00:00+00:00"})
    assert status == 422  # more than a year ahead
    for bad in (
        {"seconds": -5},
        {"until": "tomorrow"},
        {"until": "2030-01-01T00:00:00"},
        {},
        {"seconds": 5, "until": 1},
    ):
        status, response = post(client, "/schedules/tick/pause", bad)
        assert status == 422, bad


def test_enable_and_disable(client: FlaskClient, redis: redis_py.Redis) -> None:
    post(client, "/schedules", TICK)
    assert post(client, "/schedules/tick/disable")[1]["enabled"] is False
    assert schedules.load(redis, "tick")["enabled"] is False
    assert post(client, "/schedules/tick/enable")[1]["enabled"] is True


def test_run_now_enqueues_and_records_it(client: FlaskClient, redis: redis_py.Redis, run_jobs) -> None:  # type: ignore[no-untyped-def]
    post(client, "/schedules", TICK)
    status, accepted = post(client, "/schedules/tick/run")
    assert status == 202
    run_jobs()
    runs = client.get("/api/v1/schedules/tick/runs", headers=AUTH).get_json()["runs"]
    assert [(r["outcome"], r["job_id"], r["reason"]) for r in runs] == [("finished", accepted["id"], "run now")]
    assert client.get(accepted["url"], headers=AUTH).get_json()["result"] == "t"


def test_delete_removes_schedule_and_ledger(client: FlaskClient, redis: redis_py.Redis) -> None:
    post(client, "/schedules", TICK)
    ledger.record(redis, "tick", "1", 1, "missed")
    assert client.delete("/api/v1/schedules/tick", headers=AUTH).status_code == 204
    assert not redis.exists(keys.schedule("tick"), keys.schedule_ledger("tick"))
    assert client.get("/api/v1/schedules/tick", headers=AUTH).status_code == 404
    assert client.delete("/api/v1/schedules/tick", headers=AUTH).status_code == 404


def test_preview_lists_ten_fire_times_or_says_why_not(client: FlaskClient) -> None:
    ok = client.get("/api/v1/schedules/preview?cron=0%203%20*%20*%20*&tz=Europe/Warsaw", headers=AUTH)
    assert ok.status_code == 200
    times = ok.get_json()["next"]
    assert len(times) == 10 and all(t["local"].endswith(("+01:00", "+02:00")) for t in times)
    assert client.get("/api/v1/schedules/preview?interval=30", headers=AUTH).status_code == 200
    bad = client.get("/api/v1/schedules/preview?cron=0%2025%20*%20*%20*", headers=AUTH)
    assert bad.status_code == 422 and "is not valid" in bad.get_json()["error"]
    bad = client.get("/api/v1/schedules/preview?cron=0%203%20*%20*%20*&tz=Moon/Base", headers=AUTH)
    assert bad.status_code == 422 and "Moon/Base" in bad.get_json()["error"]


def test_schedule_routes_need_the_token(client: FlaskClient, redis: redis_py.Redis) -> None:
    assert client.post("/api/v1/schedules", json=TICK).status_code == 401
    assert client.get("/api/v1/schedules").status_code == 401
    assert client.post("/api/v1/scheduler/reload").status_code == 401
    assert redis.keys("alarmq:schedule*") == []


def test_scheduler_status_without_a_scheduler_and_reload(client: FlaskClient, declared: None) -> None:
    status = client.get("/api/v1/scheduler", headers=AUTH).get_json()
    assert status == {"leader": None, "standbys": [], "last_tick": None, "tick_ms": None, "lag_ms": None}
    code, report = post(client, "/scheduler/reload")
    assert code == 202 and report["created"] == ["check_alarms", "report"]
