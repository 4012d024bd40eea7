"""The HTTP API: every route, its bad input, its auth, and what it stores."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import redis as redis_py
from flask import Flask
from flask.testing import FlaskClient
from rq.job import Job

from alarmq import keys
from tests.conftest import AUTH


def enqueue(client: FlaskClient, body: object, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    response = client.post("/api/v1/jobs", json=body, headers=AUTH if headers is None else headers)
    return response.status_code, response.get_json()


def stored_job_ids(redis: redis_py.Redis) -> list[bytes]:
    return [k for k in redis.keys("rq:job:*") if k.count(b":") == 2]


def test_health_needs_no_token_and_reports_redis_and_queues(client: FlaskClient) -> None:
    response = client.get("/api/v1/health")
    assert response.status_code == 200
    body = response.get_json()
    assert body["redis"]["ok"] is True
    assert body["queues"] == {"checks": 0, "default": 0, "scheduled": 0}
    assert body["status"] == "degraded"  # no worker and no scheduler in this test
    assert body["scheduler"]["alive"] is False


def test_tasks_lists_builtins_with_schemas(client: FlaskClient) -> None:
    response = client.get("/api/v1/tasks", headers=AUTH)
    assert response.status_code == 200
    tasks = {t["name"]: t for t in response.get_json()["tasks"]}
    assert {"echo", "sleep", "http_check"} <= set(tasks)
    assert tasks["echo"]["parameters"]["required"] == ["message"]
    assert tasks["http_check"]["parameters"]["properties"]["timeout"] == {"type": "number", "default": 10}


def test_get_task_unknown_is_404(client: FlaskClient) -> None:
    assert client.get("/api/v1/tasks/echo", headers=AUTH).get_json()["name"] == "echo"
    response = client.get("/api/v1/tasks/nope", headers=AUTH)
    assert response.status_code == 404
    assert "nope" in response.get_json()["error"]


def test_enqueue_then_work_shows_result(
    client: FlaskClient, redis: redis_py.Redis, run_jobs: Callable[[], int]
) -> None:
    status, body = enqueue(client, {"task": "echo", "kwargs": {"message": "hi"}})
    assert status == 202
    assert body["status"] == "queued"
    assert body["url"] == f"/api/v1/jobs/{body['id']}"
    assert redis.lrange(f"rq:queue:{keys.DEFAULT_QUEUE}", 0, -1) == [body["id"].encode()]

    run_jobs()

    job = client.get(body["url"], headers=AUTH).get_json()
    assert job["status"] == "finished"
    assert job["result"] == "hi"
    assert job["task"] == "echo"
    assert job["kwargs"] == {"message": "hi"}
    assert job["source"] == "api"
    assert job["enqueued_at"] and job["started_at"] and job["ended_at"]


def test_enqueued_job_is_stored_as_json_not_pickle(client: FlaskClient, redis: redis_py.Redis) -> None:
    _, body = enqueue(client, {"task": "echo", "kwargs": {"message": "hi"}})
    raw = redis.hget(f"rq:job:{body['id']}", "data")
    import zlib

    payload = json.loads(zlib.decompress(raw))
    assert payload[0] == "alarmq.tasks.echo"
    assert payload[3] == {"message": "hi"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"task": "os.system", "kwargs": {"command": "true"}}, "unknown task 'os.system'"),
        ({"task": "echo"}, "needs argument 'message'"),
        ({"task": "echo", "kwargs": {"message": 5}}, "kwargs.message must be string"),
        ({"task": "echo", "kwargs": {"message": "x", "extra": 1}}, "has no argument 'extra'"),
        ({"task": "echo", "kwargs": ["x"]}, "kwargs must be an object"),
        ({"task": "sleep", "kwargs": {"seconds": True}}, "kwargs.seconds must be number"),
        ({"task": "echo", "kwargs": {"message": "x"}, "queue": "nowhere"}, "queue must be one of"),
        ({"task": "echo", "kwargs": {"message": "x"}, "timeout": 0}, "timeout must be a whole number"),
        ({"task": "echo", "kwargs": {"message": "x"}, "retries": -1}, "retries must be a whole number"),
        ({"task": "echo", "kwargs": {"message": "x"}, "priority": 1}, "unknown field 'priority'"),
        ({"kwargs": {}}, "task is required"),
        ({"task": ["echo"]}, "unknown task"),
    ],
)
def test_bad_job_is_refused_with_422_and_stores_nothing(
    client: FlaskClient, redis: redis_py.Redis, body: dict, message: str
) -> None:
    status, response = enqueue(client, body)
    assert status == 422
    assert message in response["error"]
    assert stored_job_ids(redis) == []
    assert redis.zcard(keys.jobs_index()) == 0


def test_body_must_be_json_object(client: FlaskClient, redis: redis_py.Redis) -> None:
    r = client.post("/api/v1/jobs", data="task=echo", headers=AUTH, content_type="application/x-www-form-urlencoded")
    assert r.status_code == 415
    assert "application/json" in r.get_json()["error"]
    r = client.post("/api/v1/jobs", data="{not json", headers=AUTH, content_type="application/json")
    assert r.status_code == 400
    assert r.get_json()["error"] == "the body is not valid JSON"
    r = client.post("/api/v1/jobs", data="[1]", headers=AUTH, content_type="application/json")
    assert r.status_code == 400
    assert r.get_json()["error"] == "the body must be a JSON object"
    assert stored_job_ids(redis) == []


def test_oversized_body_is_413(client: FlaskClient, app: Flask, redis: redis_py.Redis) -> None:
    big = "x" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    status, body = enqueue(client, {"task": "echo", "kwargs": {"message": big}})
    assert status == 413
    assert "too large" in body["error"]
    assert stored_job_ids(redis) == []


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": "Basic Zm9vOmJhcg=="}],
)
def test_mutating_and_reading_routes_need_the_token(
    client: FlaskClient, redis: redis_py.Redis, headers: dict[str, str]
) -> None:
    status, body = enqueue(client, {"task": "echo", "kwargs": {"message": "x"}}, headers=headers)
    assert status == 401
    assert "token" in body["error"]
    assert stored_job_ids(redis) == []
    for method, path in [
        ("get", "/api/v1/jobs"),
        ("get", "/api/v1/tasks"),
        ("post", "/api/v1/jobs/x/cancel"),
        ("post", "/api/v1/jobs/x/requeue"),
        ("delete", "/api/v1/jobs/x"),
    ]:
        response = getattr(client, method)(path, headers=headers)
        assert response.status_code == 401, path
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_unknown_job_is_404(client: FlaskClient, redis: redis_py.Redis) -> None:
    for path in ["/api/v1/jobs/does-not-exist", "/api/v1/jobs/bad%20id!", "/api/v1/jobs/abc%0A"]:
        response = client.get(path, headers=AUTH)
        assert response.status_code == 404
        assert "no job" in response.get_json()["error"]


def test_list_jobs_newest_first_with_cursor_and_filters(
    client: FlaskClient, redis: redis_py.Redis, run_jobs: Callable[[], int]
) -> None:
    ids = [enqueue(client, {"task": "echo", "kwargs": {"message": str(i)}})[1]["id"] for i in range(5)]
    sleeper = enqueue(client, {"task": "sleep", "kwargs": {"seconds": 0}})[1]["id"]
    page = client.get("/api/v1/jobs?limit=4", headers=AUTH).get_json()
    assert [j["id"] for j in page["jobs"]] == [sleeper, *ids[::-1][:3]]
    rest = client.get(f"/api/v1/jobs?limit=4&cursor={page['next_cursor']}", headers=AUTH).get_json()
    assert [j["id"] for j in rest["jobs"]] == ids[1::-1]

    echoes = client.get("/api/v1/jobs?task=echo&limit=50", headers=AUTH).get_json()["jobs"]
    assert [j["id"] for j in echoes] == ids[::-1]

    client.post(f"/api/v1/jobs/{ids[0]}/cancel", headers=AUTH)
    run_jobs()
    finished = client.get("/api/v1/jobs?status=finished", headers=AUTH).get_json()["jobs"]
    assert {j["id"] for j in finished} == {*ids[1:], sleeper}
    canceled = client.get("/api/v1/jobs?status=canceled", headers=AUTH).get_json()["jobs"]
    assert [j["id"] for j in canceled] == [ids[0]]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("limit=0", "limit must be"),
        ("limit=abc", "limit must be"),
        ("status=nope", "status must be one of"),
        ("cursor=nan", "cursor must be"),
        ("cursor=zz", "cursor must be"),
    ],
)
def test_list_jobs_bad_query_is_422(client: FlaskClient, query: str, message: str) -> None:
    response = client.get(f"/api/v1/jobs?{query}", headers=AUTH)
    assert response.status_code == 422
    assert message in response.get_json()["error"]


def test_cancel_queued_job_then_it_never_runs(
    client: FlaskClient, redis: redis_py.Redis, run_jobs: Callable[[], int]
) -> None:
    _, body = enqueue(client, {"task": "echo", "kwargs": {"message": "x"}})
    response = client.post(f"/api/v1/jobs/{body['id']}/cancel", headers=AUTH)
    assert response.status_code == 202
    assert response.get_json()["status"] == "canceled"
    assert redis.llen("rq:queue:default") == 0
    run_jobs()
    assert client.get(body["url"], headers=AUTH).get_json()["status"] == "canceled"
    again = client.post(f"/api/v1/jobs/{body['id']}/cancel", headers=AUTH)
    assert again.status_code == 409
    assert "canceled" in again.get_json()["error"]


def test_failed_job_shows_error_and_can_be_requeued(
    client: FlaskClient, redis: redis_py.Redis, run_jobs: Callable[[], int]
) -> None:
    _, body = enqueue(client, {"task": "sleep", "kwargs": {"seconds": -1}})
    run_jobs()
    failed = client.get(body["url"], headers=AUTH).get_json()
    assert failed["status"] == "failed"
    assert failed["error"] == "ValueError: seconds must be zero or more"
    assert "Traceback" in failed["traceback"]

    response = client.post(f"/api/v1/jobs/{body['id']}/requeue", headers=AUTH)
    assert response.status_code == 202
    assert response.get_json()["status"] == "queued"
    assert redis.lrange("rq:queue:default", 0, -1) == [body["id"].encode()]


def test_requeue_finished_job_is_409(client: FlaskClient, run_jobs: Callable[[], int]) -> None:
    _, body = enqueue(client, {"task": "echo", "kwargs": {"message": "x"}})
    run_jobs()
    response = client.post(f"/api/v1/jobs/{body['id']}/requeue", headers=AUTH)
    assert response.status_code == 409
    assert "only failed, stopped or canceled" in response.get_json()["error"]


def test_delete_removes_job_and_listing(
    client: FlaskClient, redis: redis_py.Redis, run_jobs: Callable[[], int]
) -> None:
    _, body = enqueue(client, {"task": "echo", "kwargs": {"message": "x"}})
    run_jobs()
    assert client.delete(body["url"], headers=AUTH).status_code == 204
    assert not redis.exists(f"rq:job:{body['id']}")
    assert redis.zscore(keys.jobs_index(), body["id"]) is None
    assert client.get(body["url"], headers=AUTH).status_code == 404


def test_expired_jobs_drop_out_of_the_listing(client: FlaskClient, redis: redis_py.Redis) -> None:
    _, body = enqueue(client, {"task": "echo", "kwargs": {"message": "x"}})
    Job.fetch(body["id"], connection=redis).delete()
    assert client.get("/api/v1/jobs", headers=AUTH).get_json()["jobs"] == []
    assert redis.zcard(keys.jobs_index()) == 0


def test_unknown_route_and_method_answer_json(client: FlaskClient) -> None:
    response = client.get("/api/v1/nothing", headers=AUTH)
    assert response.status_code == 404
    assert "openapi.json" in response.get_json()["error"]
    response = client.put("/api/v1/jobs", headers=AUTH)
    assert response.status_code == 405
    assert response.get_json()["error"] == "PUT is not allowed on /api/v1/jobs"


def test_events_rejects_a_bad_since(client: FlaskClient) -> None:
    response = client.get("/api/v1/events?since=abc", headers=AUTH)
    assert response.status_code == 422
    assert client.get("/api/v1/events?since=1%0A", headers=AUTH).status_code == 422
    assert client.get("/api/v1/events?since=99999999999999999999", headers=AUTH).status_code == 422
    assert client.get("/api/v1/events?since=0-0", headers=AUTH).get_json() == {"events": []}


def test_redis_down_answers_503_not_500(settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from alarmq.web import create_app

    down = settings.replace(redis_url=f"unix://{tmp_path}/nothing.sock")
    client = create_app(down).test_client()
    assert client.get("/api/v1/health").status_code == 503
    response = client.post("/api/v1/jobs", json={"task": "echo", "kwargs": {"message": "x"}}, headers=AUTH)
    assert response.status_code == 503
    assert response.get_json()["error"] == "redis is not reachable; try again shortly"


def test_openapi_describes_every_api_route(app: Flask, client: FlaskClient) -> None:
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    documented = {(path, method.upper()) for path, ops in spec["paths"].items() for method in ops}
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/"):
            path = rule.rule.removeprefix("/api/v1").replace("<", "{").replace(">", "}")
            served |= {(path, m) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert documented == served


def test_rq_dashboard_needs_the_token(client: FlaskClient) -> None:
    response = client.get("/rq/")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    import base64

    basic = base64.b64encode(f"admin:{AUTH['Authorization'].split()[1]}".encode()).decode()
    assert client.get("/rq/", headers={"Authorization": f"Basic {basic}"}).status_code == 200
    assert client.get("/rq/0/data/queues.json", headers=AUTH).status_code == 200
