"""Access: named tokens with roles, the bootstrap token, login sessions with CSRF, /ws and rq-dashboard."""

from __future__ import annotations

import base64
import getpass
import json
from pathlib import Path
from typing import Any

import pytest
import redis as redis_py
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from alarmq import auth, keys
from alarmq.cli import main
from alarmq.errors import ConfigError
from alarmq.settings import Settings
from alarmq.web import create_app, redis_of
from tests.conftest import AUTH, TOKEN

JOB = {"task": "echo", "kwargs": {"message": "hi"}}
TICK = {"id": "tick", "task": "echo", "kwargs": {"message": "t"}, "interval": 60}


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def basic(secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"anyone:{secret}".encode()).decode()}


def token(redis: redis_py.Redis, role: str, name: str | None = None) -> str:
    return auth.add_token(redis, name or role, role)


def stored_job_ids(redis: redis_py.Redis) -> list[bytes]:
    return [k for k in redis.keys("rq:job:*") if k.count(b":") == 2]


def log_in(client: FlaskClient, secret: str) -> str:
    """Log in through the form; return the session's CSRF token."""
    response = client.post("/login", data={"token": secret})
    assert response.status_code == 303, response.get_data(as_text=True)
    return str(client.get("/api/v1/session").get_json()["csrf_token"])


def everything_in(redis: redis_py.Redis) -> bytes:
    """Return every key and value in Redis, of every type, as one blob."""
    parts: list[bytes] = []
    for key in redis.scan_iter(count=1000):
        parts.append(key)
        kind = redis.type(key)
        if kind == b"string":
            parts.append(redis.get(key) or b"")
        elif kind == b"hash":
            for k, v in redis.hgetall(key).items():
                parts += [k, v]
        elif kind == b"list":
            parts += redis.lrange(key, 0, -1)
        elif kind == b"set":
            parts += list(redis.smembers(key))
        elif kind == b"zset":
            parts += [m for m, _ in redis.zrange(key, 0, -1, withscores=True)]
        elif kind == b"stream":
            for _, fields in redis.xrange(key):
                for k, v in fields.items():
                    parts += [k, v]
    return b"\n".join(parts)


# -- roles ----------------------------------------------------------------------------------


def test_roles_rank_viewer_below_operator_below_admin() -> None:
    viewer, operator, admin = (auth.Principal("x", r) for r in ("viewer", "operator", "admin"))
    assert viewer.may("viewer") and not viewer.may("operator") and not viewer.may("admin")
    assert operator.may("viewer") and operator.may("operator") and not operator.may("admin")
    assert admin.may("viewer") and admin.may("operator") and admin.may("admin")


def test_viewer_reads_everything_but_changes_nothing(client: FlaskClient, redis: redis_py.Redis) -> None:
    assert client.post("/api/v1/schedules", json=TICK, headers=AUTH).status_code == 201
    viewer = bearer(token(redis, "viewer", "watcher"))
    for path in ("/api/v1/tasks", "/api/v1/jobs", "/api/v1/schedules", "/api/v1/schedules/tick", "/api/v1/alarms",
                 "/api/v1/channels", "/api/v1/events", "/api/v1/scheduler", "/api/v1/audit"):  # fmt: skip
        assert client.get(path, headers=viewer).status_code == 200, path

    response = client.post("/api/v1/jobs", json=JOB, headers=viewer)
    assert response.status_code == 403
    assert "'watcher' has the viewer role; this needs operator" in response.get_json()["error"]
    assert stored_job_ids(redis) == []
    assert client.patch("/api/v1/schedules/tick", json={"interval": 5}, headers=viewer).status_code == 403
    assert client.post("/api/v1/schedules/tick/pause", json={"seconds": 60}, headers=viewer).status_code == 403
    assert client.delete("/api/v1/schedules/tick", headers=viewer).status_code == 403
    assert client.post("/api/v1/scheduler/reload", headers=viewer).status_code == 403
    assert client.post("/api/v1/metrics/disk.used", json={"value": 1}, headers=viewer).status_code == 403
    assert client.get("/api/v1/schedules/tick", headers=AUTH).get_json()["interval"] == 60
    assert client.get("/api/v1/tokens", headers=viewer).status_code == 403


def test_operator_enqueues_and_steers_but_cannot_manage_tokens(client: FlaskClient, redis: redis_py.Redis) -> None:
    operator = bearer(token(redis, "operator", "ops"))
    assert client.post("/api/v1/jobs", json=JOB, headers=operator).status_code == 202
    assert client.post("/api/v1/schedules", json=TICK, headers=operator).status_code == 201
    assert client.patch("/api/v1/schedules/tick", json={"interval": 30}, headers=operator).status_code == 200
    assert client.post("/api/v1/schedules/tick/pause", json={"seconds": 60}, headers=operator).status_code == 200
    alarm = {"id": "beat", "kind": "heartbeat", "interval": 60, "config": {"period": 60, "grace": 10}}
    assert client.post("/api/v1/alarms", json=alarm, headers=operator).status_code == 201
    assert client.post("/api/v1/alarms/beat/disable", headers=operator).status_code == 200

    assert client.get("/api/v1/tokens", headers=operator).status_code == 403
    response = client.post("/api/v1/tokens", json={"name": "sneaky", "role": "admin"}, headers=operator)
    assert response.status_code == 403
    assert [t["name"] for t in auth.list_tokens(redis)] == ["ops"]
    assert client.delete("/api/v1/tokens/ops", headers=operator).status_code == 403


def test_admin_adds_a_token_that_works_and_revokes_it(client: FlaskClient, redis: redis_py.Redis) -> None:
    admin = bearer(token(redis, "admin", "root"))
    response = client.post("/api/v1/tokens", json={"name": "ci", "role": "operator"}, headers=admin)
    assert response.status_code == 201
    created = response.get_json()
    assert created["name"] == "ci" and created["role"] == "operator" and created["token"].startswith("alq_")
    assert response.headers["Location"] == "/api/v1/tokens/ci"
    assert response.headers["Cache-Control"] == "no-store"
    ci = bearer(created["token"])
    assert client.post("/api/v1/jobs", json=JOB, headers=ci).status_code == 202
    assert client.get("/api/v1/session", headers=ci).get_json() == {
        "name": "ci", "role": "operator", "via": "bearer", "csrf_token": None}  # fmt: skip

    listed = client.get("/api/v1/tokens", headers=admin).get_json()["tokens"]
    assert [(t["name"], t["role"]) for t in listed] == [("ci", "operator"), ("root", "admin")]
    assert all(set(t) == {"name", "role", "created_at", "last_used"} for t in listed)
    assert client.get("/api/v1/tokens/ci", headers=admin).get_json()["last_used"] is not None

    assert client.delete("/api/v1/tokens/ci", headers=admin).status_code == 204
    response = client.get("/api/v1/jobs", headers=ci)
    assert response.status_code == 401
    assert response.get_json()["error"] == "the API token is not valid"
    assert client.delete("/api/v1/tokens/ci", headers=admin).status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"name": "admin", "role": "viewer"}, 422, "names the bootstrap token"),
        ({"name": "Bad Name", "role": "viewer"}, 422, "a token name is 1-64 of a-z"),
        ({"name": "ok", "role": "root"}, 422, "role must be one of viewer, operator, admin"),
        ({"name": "ok", "role": "viewer", "secret": "x"}, 422, "unknown field 'secret'"),
        ({"name": "taken", "role": "viewer"}, 409, "a token named 'taken' exists"),
    ],
)
def test_bad_token_requests_say_why_and_store_nothing(
    client: FlaskClient, redis: redis_py.Redis, body: dict[str, Any], status: int, message: str
) -> None:
    token(redis, "admin", "taken")
    response = client.post("/api/v1/tokens", json=body, headers=AUTH)
    assert response.status_code == status
    assert message in response.get_json()["error"]
    assert [t["name"] for t in auth.list_tokens(redis)] == ["taken"]


def test_tokens_are_stored_only_as_salted_hashes(client: FlaskClient, redis: redis_py.Redis) -> None:
    secrets = [client.post("/api/v1/tokens", json={"name": f"t{i}", "role": "viewer"}, headers=AUTH).get_json()["token"]
               for i in range(2)]  # fmt: skip
    secrets.append(token(redis, "operator", "direct"))
    for secret in secrets:  # used, so last-used and the audit log have had their chance to leak it
        assert client.get("/api/v1/jobs", headers=bearer(secret)).status_code == 200
    blob = everything_in(redis)
    for secret in secrets:
        assert secret.encode() not in blob
        assert secret.removeprefix("alq_").encode() not in blob
    records = [json.loads(v) for v in redis.hgetall(keys.tokens()).values()]
    assert len({r["salt"] for r in records}) == 3 and len({r["hash"] for r in records}) == 3


def test_unknown_and_malformed_tokens_are_401(client: FlaskClient, redis: redis_py.Redis) -> None:
    token(redis, "admin", "root")
    for value in ("alq_" + "x" * 43, "alq_", "nonsense", "alq_" + "y" * 500, TOKEN[:-1]):
        assert client.get("/api/v1/jobs", headers=bearer(value)).status_code == 401, value
    response = client.get("/api/v1/jobs")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_the_bootstrap_token_is_the_admin(client: FlaskClient) -> None:
    assert client.get("/api/v1/session", headers=AUTH).get_json() == {
        "name": "admin", "role": "admin", "via": "bearer", "csrf_token": None}  # fmt: skip
    assert client.post("/api/v1/tokens", json={"name": "first", "role": "admin"}, headers=AUTH).status_code == 201


def test_last_used_is_recorded_but_not_on_every_request(client: FlaskClient, redis: redis_py.Redis) -> None:
    secret = token(redis, "viewer", "v")
    assert auth.list_tokens(redis)[0]["last_used"] is None
    client.get("/api/v1/jobs", headers=bearer(secret))
    first = auth.list_tokens(redis)[0]["last_used"]
    assert first is not None
    client.get("/api/v1/jobs", headers=bearer(secret))
    assert auth.list_tokens(redis)[0]["last_used"] == first  # within LAST_USED_EVERY


def test_a_use_racing_a_revoke_leaves_nothing_behind(redis: redis_py.Redis) -> None:
    secret = token(redis, "viewer", "v")
    redis.hdel(keys.tokens(), "v")  # revoked between the lookup and the last-used write
    with pytest.raises(Exception, match="not valid"):
        auth.authenticate(redis, None, secret)
    assert not redis.hexists(keys.tokens_last_used(), "v")


# -- login, cookie, CSRF --------------------------------------------------------------------


def test_login_page_is_a_plain_form(client: FlaskClient) -> None:
    response = client.get("/login")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert response.mimetype == "text/html"
    assert '<form method="post" action="/login">' in page and 'name="token"' in page
    assert "http://" not in page and "https://" not in page  # nothing from a CDN


def test_login_sets_an_httponly_samesite_cookie(client: FlaskClient, redis: redis_py.Redis) -> None:
    secret = token(redis, "operator", "ops")
    response = client.post("/login", data={"token": secret, "next": "/api/v1/session"})
    assert response.status_code == 303
    assert response.headers["Location"] == "/api/v1/session"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("alarmq_session=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie
    assert secret not in cookie
    session = client.get("/api/v1/session").get_json()
    assert session["name"] == "ops" and session["role"] == "operator" and session["via"] == "cookie"
    assert len(session["csrf_token"]) >= 32
    assert "Signed in as <strong>ops</strong> (operator)" in client.get("/login").get_data(as_text=True)


def test_the_secure_flag_follows_the_setting(settings: Settings, redis: redis_py.Redis) -> None:
    app = create_app(settings.replace(session_cookie_secure=True))
    try:
        response = app.test_client().post("/login", data={"token": TOKEN})
        assert "Secure" in response.headers["Set-Cookie"]
    finally:
        redis_of(app).close()
        app.redis_conn.close()  # type: ignore[attr-defined]


def test_a_wrong_token_shows_the_form_again_and_sets_no_cookie(client: FlaskClient) -> None:
    response = client.post("/login", data={"token": "alq_wrong"})
    assert response.status_code == 401
    assert "That token is not valid." in response.get_data(as_text=True)
    assert "Set-Cookie" not in response.headers
    assert client.get("/api/v1/jobs").status_code == 401


def test_login_never_redirects_to_another_site(client: FlaskClient) -> None:
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        response = client.post("/login", data={"token": TOKEN, "next": target})
        assert response.headers["Location"] == "/login"


def test_a_login_posted_from_another_site_is_refused(client: FlaskClient) -> None:
    response = client.post("/login", data={"token": TOKEN}, headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    assert "Set-Cookie" not in response.headers


def test_json_login_answers_with_the_csrf_token(client: FlaskClient) -> None:
    response = client.post("/login", json={"token": TOKEN})
    assert response.status_code == 200
    body = response.get_json()
    assert body["name"] == "admin" and body["role"] == "admin"
    assert body["csrf_token"] == client.get("/api/v1/session").get_json()["csrf_token"]
    assert client.post("/login", json={"token": "nope"}).status_code == 401


def test_cookie_reads_work_and_changes_need_the_csrf_token(client: FlaskClient, redis: redis_py.Redis) -> None:
    csrf = log_in(client, token(redis, "operator", "ops"))
    assert client.get("/api/v1/jobs").status_code == 200

    response = client.post("/api/v1/jobs", json=JOB)
    assert response.status_code == 403
    assert "X-CSRF-Token" in response.get_json()["error"]
    assert client.post("/api/v1/jobs", json=JOB, headers={"X-CSRF-Token": "x" * 43}).status_code == 403
    assert stored_job_ids(redis) == []

    response = client.post("/api/v1/jobs", json=JOB, headers={"X-CSRF-Token": csrf})
    assert response.status_code == 202
    assert stored_job_ids(redis) == [f"rq:job:{response.get_json()['id']}".encode()]


def test_a_viewer_cookie_cannot_change_things_even_with_the_csrf_token(
    client: FlaskClient, redis: redis_py.Redis
) -> None:
    csrf = log_in(client, token(redis, "viewer", "v"))
    assert client.post("/api/v1/jobs", json=JOB, headers={"X-CSRF-Token": csrf}).status_code == 403
    assert stored_job_ids(redis) == []


def test_logout_ends_the_session_even_for_a_copied_cookie(client: FlaskClient, redis: redis_py.Redis) -> None:
    csrf = log_in(client, token(redis, "operator", "ops"))
    stolen = client.get_cookie("alarmq_session")
    assert stolen is not None
    assert client.post("/logout").status_code == 403  # no CSRF token: a cross-site page cannot log you out
    assert client.get("/api/v1/jobs").status_code == 200
    response = client.post("/logout", data={"csrf_token": csrf})
    assert response.status_code == 303 and response.headers["Location"] == "/login"
    assert client.get("/api/v1/jobs").status_code == 401
    client.set_cookie("alarmq_session", stolen.value)
    assert client.get("/api/v1/jobs").status_code == 401
    assert redis.keys(keys.session("*")) == []


def test_revoking_a_token_ends_its_login_sessions(client: FlaskClient, redis: redis_py.Redis) -> None:
    log_in(client, token(redis, "operator", "ops"))
    assert client.get("/api/v1/jobs").status_code == 200
    auth.revoke_token(redis, "ops")
    response = client.get("/api/v1/jobs")
    assert response.status_code == 401
    assert "revoked" in response.get_json()["error"]
    token(redis, "operator", "ops")  # the same name again is a new token, not the old session's
    assert client.get("/api/v1/jobs").status_code == 401


def test_a_session_signed_by_one_web_process_works_in_another(
    settings: Settings, redis: redis_py.Redis, app: Flask, client: FlaskClient
) -> None:
    key_file = settings.secret_key_file
    assert key_file.exists() and oct(key_file.stat().st_mode & 0o777) == "0o600"
    log_in(client, TOKEN)
    cookie = client.get_cookie("alarmq_session")
    assert cookie is not None
    other = create_app(settings)
    try:
        assert other.config["SECRET_KEY"] == app.config["SECRET_KEY"]
        other_client = other.test_client()
        other_client.set_cookie("alarmq_session", cookie.value)
        assert other_client.get("/api/v1/session").get_json()["name"] == "admin"
    finally:
        redis_of(other).close()
        other.redis_conn.close()  # type: ignore[attr-defined]


def test_the_secret_key_comes_from_the_setting_when_given(settings: Settings) -> None:
    key = "k" * 40
    assert auth.ensure_secret_key(settings.replace(secret_key=key)) == key
    assert not settings.secret_key_file.exists()
    with pytest.raises(ConfigError, match="ALARMQ_SECRET_KEY must be at least 32 characters"):
        Settings.from_env({"ALARMQ_SECRET_KEY": "short"})
    assert Settings.from_env({"ALARMQ_SECRET_KEY": key}).secret_key == key
    assert key not in repr(Settings.from_env({"ALARMQ_SECRET_KEY": key}))


def test_an_unusable_data_dir_without_a_secret_key_says_what_to_set(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    with pytest.raises(ConfigError, match="set ALARMQ_SECRET_KEY"):
        auth.ensure_secret_key(settings.replace(data_dir=tmp_path / "a-file" / "data"))


# -- /ws and rq-dashboard -------------------------------------------------------------------


def test_ws_accepts_the_login_cookie(client: FlaskClient, redis: redis_py.Redis) -> None:
    assert client.get("/ws").status_code == 401
    log_in(client, token(redis, "viewer", "v"))
    response = client.get("/ws")  # authenticated: refused only for not being a WebSocket handshake
    assert response.status_code == 400
    assert "WebSocket endpoint" in response.get_json()["error"]
    assert client.get("/ws", headers={"Origin": "https://evil.example"}).status_code == 403


def test_rq_dashboard_is_read_only_for_viewers(client: FlaskClient, redis: redis_py.Redis) -> None:
    viewer = basic(token(redis, "viewer", "v"))
    assert client.get("/rq/", headers=viewer).status_code == 200
    assert client.get("/rq/0/data/queues.json", headers=viewer).status_code == 200
    for path in ("/rq/queue/default/compact", "/rq/queue/default/failed/empty", "/rq/requeue/default"):
        response = client.post(path, headers=viewer)
        assert response.status_code == 403, path
        assert "WWW-Authenticate" not in response.headers
    assert client.get("/rq/requeue/default", headers=viewer).status_code == 403  # rq-dashboard's mutating GET

    operator = basic(token(redis, "operator", "o"))
    assert client.post("/rq/queue/default/queued/empty", headers=operator).status_code == 200
    cross_site = {**operator, "Origin": "https://evil.example"}
    assert client.post("/rq/queue/default/queued/empty", headers=cross_site).status_code == 403


def test_rq_dashboard_honours_the_login(client: FlaskClient, redis: redis_py.Redis) -> None:
    response = client.get("/rq/")
    assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Basic")
    log_in(client, token(redis, "operator", "o"))
    assert client.get("/rq/").status_code == 200
    # rq-dashboard's own scripts cannot send X-CSRF-Token; a same-origin POST is let through.
    empty = "/rq/queue/default/queued/empty"
    assert client.post(empty, headers={"Origin": "http://localhost"}).status_code == 200
    assert client.post(empty, headers={"Origin": "https://evil.example"}).status_code == 403
    assert client.post(empty).status_code == 403


def test_a_page_without_a_login_redirects_to_it_and_a_route_can_ask_for_more(
    app: Flask, client: FlaskClient, redis: redis_py.Redis
) -> None:
    from alarmq.web import require_role

    app.add_url_rule("/secrets", "secrets", lambda: require_role(app, "admin").name)
    response = client.get("/secrets?x=1", headers={"Accept": "text/html"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/secrets?x%3D1"
    assert client.get("/secrets", headers=bearer(token(redis, "operator", "o"))).status_code == 403
    assert client.get("/secrets", headers=AUTH).get_data(as_text=True) == "admin"


def test_heartbeat_pings_and_health_stay_public(client: FlaskClient) -> None:
    assert client.get("/api/v1/health").status_code == 200
    assert client.get("/api/v1/openapi.json").status_code == 200
    assert client.get("/api/v1/heartbeats/no-such-token").status_code == 404


# -- the CLI ---------------------------------------------------------------------------------


def test_cli_adds_lists_and_revokes_tokens(runner: CliRunner, client: FlaskClient, redis: redis_py.Redis) -> None:
    result = runner.invoke(main, ["tokens", "add", "deploy-bot", "--role", "operator"])
    assert result.exit_code == 0, result.output
    secret = result.stdout.strip()
    assert secret.startswith("alq_") and "\n" not in secret
    assert "not shown again" in result.stderr
    assert client.post("/api/v1/jobs", json=JOB, headers=bearer(secret)).status_code == 202

    listed = runner.invoke(main, ["tokens", "list"])
    assert listed.exit_code == 0
    assert "deploy-bot" in listed.stdout and "operator" in listed.stdout and secret not in listed.stdout
    as_json = json.loads(runner.invoke(main, ["tokens", "list", "--json"]).stdout)
    assert [(t["name"], t["role"]) for t in as_json] == [("deploy-bot", "operator")]

    revoked = runner.invoke(main, ["tokens", "revoke", "deploy-bot"])
    assert revoked.exit_code == 0 and "deploy-bot: revoked" in revoked.stdout
    assert client.get("/api/v1/jobs", headers=bearer(secret)).status_code == 401

    again = runner.invoke(main, ["tokens", "revoke", "deploy-bot"])
    assert again.exit_code == 3 and "no token named 'deploy-bot'" in again.output
    bad = runner.invoke(main, ["tokens", "add", "x", "--role", "root"])
    assert bad.exit_code == 2
    assert runner.invoke(main, ["tokens", "add", "admin", "--role", "viewer"]).exit_code == 2

    entries = client.get("/api/v1/audit", headers=AUTH).get_json()["entries"]
    mine = [(e["action"], e["target"], e["via"], e["who"]) for e in entries if e["via"] == "cli"]
    assert mine == [
        ("token.revoke", "token:deploy-bot", "cli", getpass.getuser()),
        ("token.add", "token:deploy-bot", "cli", getpass.getuser()),
    ]
    assert secret.encode() not in everything_in(redis)
