"""Notification channels against real local sinks: an HTTP server for webhooks and an SMTP server for email."""

from __future__ import annotations

import email
import email.policy
import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis as redis_py
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from flask import Flask
from flask.testing import FlaskClient
from rq.job import Job

from alarmq import channels, events, jobs, keys
from alarmq.settings import Settings
from alarmq.web import channels as web_channels
from tests.conftest import AUTH, free_port

SINCE = 1_767_225_600.0  # 2026-01-01T00:00:00Z
ALARM = {
    "id": "disk",
    "name": "Disk full on db1",
    "state": "firing",
    "since": SINCE,
    "last_result": {"value": 97.5, "message": "97.5% used"},
    "channels": ["ops-hook"],
}
FLIP = {"old": "pending", "new": "firing", "reason": "disk above 95%"}
PASSWORD = "s3cret-pa55"


# -- sinks -----------------------------------------------------------------------------


class HookSink(http.server.ThreadingHTTPServer):
    """An HTTP server that records every POST and answers 500 to the first `fail_next` of them."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _HookHandler)
        self.requests: list[dict[str, Any]] = []
        self.fail_next = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


class _HookHandler(http.server.BaseHTTPRequestHandler):
    server: HookSink

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with self.server.lock:
            self.server.requests.append(
                {
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "json": json.loads(body),
                }
            )
            failing = self.server.fail_next > 0
            self.server.fail_next -= failing
        self.send_response(500 if failing else 200)
        self.end_headers()
        self.wfile.write(b"sink is down" if failing else b"ok")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[HookSink]:
    """Serve the webhook sink on a free port."""
    server = HookSink()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


class MailSink:
    """An aiosmtpd handler and authenticator that keep every message and login."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.logins: list[tuple[str, str]] = []
        self.accounts = {"alarmq": PASSWORD}

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's name)
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos), "email": parsed})
        return "250 OK"

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        self.logins.append((login, password))
        # handled=False: aiosmtpd answers a refusal (535) itself.
        return AuthResult(success=self.accounts.get(login) == password, handled=False)


@pytest.fixture
def mail() -> Iterator[tuple[MailSink, int]]:
    """Serve the SMTP sink on a free port: plain SMTP that offers AUTH without TLS."""
    sink = MailSink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port, authenticator=sink, auth_require_tls=False)
    controller.start()
    yield sink, port
    controller.stop()


# -- helpers ---------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def immediate_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retry at once, so one burst of the in-process worker works every attempt."""
    monkeypatch.setattr(channels, "BACKOFF_BASE", 0)


@pytest.fixture
def api(app: Flask) -> FlaskClient:
    """Return a client of the app with the channels blueprint registered before any request."""
    if "channels" not in app.blueprints:  # until create_app registers it itself
        app.register_blueprint(web_channels.bp)
    return app.test_client()


def webhook(hook: HookSink, **config: Any) -> dict[str, Any]:
    return {"id": "ops-hook", "kind": "webhook", "config": {"url": hook.url, **config}}


def mailer(port: int, **config: Any) -> dict[str, Any]:
    base = {"host": "127.0.0.1", "port": port, "sender": "alarmq@example.com", "to": ["ops@example.com"]}
    return {"id": "ops-mail", "kind": "email", "config": {**base, **config}}


def post(client: FlaskClient, path: str, body: object = None) -> tuple[int, Any]:
    response = client.post(f"/api/v1{path}", json=body, headers=AUTH)
    return response.status_code, response.get_json()


def log_of(redis: redis_py.Redis, alarm_id: str = "disk") -> list[dict[str, Any]]:
    return channels.notifications(redis, alarm_id, 100)


def notify(redis: redis_py.Redis, settings: Settings, kind: str = "fired", **alarm: Any) -> list[str]:
    return channels.enqueue_notifications(redis, settings, {**ALARM, **alarm}, kind, FLIP if kind != "repeat" else None)


# -- the API ---------------------------------------------------------------------------


def test_create_list_and_show_channels_with_the_password_hidden(
    api: FlaskClient, redis: redis_py.Redis, hook: HookSink
) -> None:
    status, created = post(api, "/channels", webhook(hook, headers={"Authorization": "Bearer abc", "X-Env": "prod"}))
    assert status == 201
    assert created["kind"] == "webhook" and created["config"]["url"] == hook.url
    assert created["config"]["headers"] == {"Authorization": "***", "X-Env": "prod"}
    assert created["config"]["timeout"] == 10 and created["config"]["template"] is None

    body = mailer(2525, username="alarmq", password=PASSWORD, starttls=True)
    del body["config"]["port"]
    status, mail_channel = post(api, "/channels", body)
    assert status == 201
    assert mail_channel["config"]["password"] == "***"
    assert mail_channel["config"]["port"] == 587  # STARTTLS's port when none is given

    shown = api.get("/api/v1/channels/ops-mail", headers=AUTH)
    assert shown.status_code == 200 and shown.get_json()["config"]["password"] == "***"
    listed = api.get("/api/v1/channels", headers=AUTH).get_json()["channels"]
    assert [c["id"] for c in listed] == ["ops-hook", "ops-mail"]
    assert PASSWORD not in json.dumps(listed)
    assert channels.load(redis, "ops-mail")["config"]["password"] == PASSWORD  # kept to log in with


def test_channels_need_the_token(api: FlaskClient) -> None:
    assert api.get("/api/v1/channels").status_code == 401
    assert api.post("/api/v1/channels/x/test").status_code == 401


HOOK = {"id": "h", "kind": "webhook", "config": {"url": "http://127.0.0.1:9/hook"}}
MAIL = {"id": "m", "kind": "email", "config": {"host": "127.0.0.1", "sender": "a@example.com", "to": ["b@example.com"]}}


def _with(base: dict[str, Any], **config: Any) -> dict[str, Any]:
    return {**base, "config": {**base["config"], **config}}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({**HOOK, "id": "Ops Hook"}, "id must be 1-64 of a-z"),
        ({**HOOK, "kind": "sms"}, "kind must be one of webhook, email"),
        ({"id": "h", "kind": "webhook"}, "config must be an object"),
        ({**HOOK, "color": "red"}, "unknown field 'color'"),
        ({**HOOK, "description": 5}, "description must be text"),
        (_with(HOOK, url="ftp://example.com/x"), "config.url must be an http:// or https:// URL"),
        (_with(HOOK, url="http:///nohost"), "config.url must be an http:// or https:// URL"),
        (_with(HOOK, method="PUT"), "unknown field 'config.method'"),
        (_with(HOOK, headers={"X-A": 1}), "config.headers.X-A must be one line of printable ASCII"),
        (_with(HOOK, headers={"X-A": "a\r\nHost: evil"}), "config.headers.X-A must be one line of printable ASCII"),
        (_with(HOOK, headers={"Bad Name": "x"}), "config.headers has a bad header name 'Bad Name'"),
        (_with(HOOK, headers={"X-A": "caf\u00e9"}), "config.headers.X-A must be one line of printable ASCII"),
        (_with(HOOK, headers=["X-A"]), "config.headers must be an object"),
        (_with(HOOK, url="http://[::1/x"), "config.url must be an http:// or https:// URL"),
        (_with(HOOK, template={"text": "\ud800"}), "config.template must be JSON of at most 16384 bytes"),
        (_with(HOOK, timeout=0), "config.timeout must be a whole number from 1 to 120"),
        (_with(HOOK, template={"text": "{x.__class__}"}), "config.template.text has '{x.__class__}'"),
        (_with(HOOK, template={"a": [{"b": "{state[0]}"}]}), "config.template.a[0].b has '{state[0]}'"),
        (_with(HOOK, template="{state!r}"), "config.template has '{state!r}'"),
        (_with(HOOK, template="{state:>{width}}"), "config.template has '{state:>{width}}'"),
        (_with(HOOK, template="{}"), "config.template has '{}'"),
        (_with(HOOK, template="oops {"), "config.template is not a valid template"),
        (_with(MAIL, host=None), "config.host must be the SMTP server's host name"),
        (_with(MAIL, port=70000), "config.port must be a whole number from 1 to 65535"),
        (_with(MAIL, starttls="yes"), "config.starttls must be true or false"),
        (_with(MAIL, ssl=1), "config.ssl must be true or false"),
        (_with(MAIL, ssl=True, starttls=True), "config.starttls and config.ssl exclude each other"),
        (_with(MAIL, username="alarmq"), "config.username and config.password go together"),
        (_with(MAIL, username="alarmq", password="***"), "config.password '***' is how a stored password is shown"),
        (_with(MAIL, sender="not an address"), "config.sender must be an email address"),
        (_with(MAIL, to=[]), "config.to must be a list of 1 to 50 email addresses"),
        (_with(MAIL, to=["ok@example.com", "nope"]), "config.to[1] must be an email address"),
        (_with(MAIL, to=["a@example.com", "<b@example.com>"]), "config.to[1] must be an email address"),
        (_with(MAIL, timeout="10"), "config.timeout must be a whole number"),
        (_with(MAIL, tls=True), "unknown field 'config.tls'"),
    ],
)
def test_bad_channel_is_refused_naming_the_field_and_nothing_is_stored(
    api: FlaskClient, redis: redis_py.Redis, body: dict[str, Any], message: str
) -> None:
    status, response = post(api, "/channels", body)
    assert status == 422
    assert message in response["error"]
    assert redis.keys("alarmq:channel*") == []


def test_duplicate_id_is_409(api: FlaskClient, hook: HookSink) -> None:
    post(api, "/channels", webhook(hook))
    status, response = post(api, "/channels", webhook(hook, timeout=3))
    assert status == 409 and "exists" in response["error"]


def test_patch_merges_config_keeps_hidden_secrets_and_refuses_bad_changes(
    api: FlaskClient, redis: redis_py.Redis
) -> None:
    post(api, "/channels", mailer(2525, username="alarmq", password=PASSWORD))
    shown = api.get("/api/v1/channels/ops-mail", headers=AUTH).get_json()

    # A client that sends back what it was shown keeps the stored password.
    roundtrip = {"config": {**shown["config"], "to": ["a@example.com", "b@example.com"]}}
    response = api.patch("/api/v1/channels/ops-mail", json=roundtrip, headers=AUTH)
    assert response.status_code == 200
    assert response.get_json()["config"]["to"] == ["a@example.com", "b@example.com"]
    stored = channels.load(redis, "ops-mail")
    assert stored["config"]["password"] == PASSWORD and stored["version"] == 2

    # null removes a key; the login goes as a pair.
    response = api.patch("/api/v1/channels/ops-mail", json={"config": {"username": None}}, headers=AUTH)
    assert response.status_code == 422 and "go together" in response.get_json()["error"]
    response = api.patch(
        "/api/v1/channels/ops-mail", json={"config": {"username": None, "password": None}}, headers=AUTH
    )
    assert response.status_code == 200 and response.get_json()["config"]["username"] is None

    before = redis.hgetall(keys.channel("ops-mail"))
    for change in ({"config": {"port": 0}}, {"kind": "webhook"}, {"id": "other"}, {"config": "x"}, {"x": 1}):
        response = api.patch("/api/v1/channels/ops-mail", json=change, headers=AUTH)
        assert response.status_code == 422, change
    assert redis.hgetall(keys.channel("ops-mail")) == before

    # Changing the kind replaces the config instead of merging into it.
    change = {"kind": "webhook", "config": {"url": "https://hooks.example.com/x"}}
    response = api.patch("/api/v1/channels/ops-mail", json=change, headers=AUTH)
    assert response.status_code == 200
    assert response.get_json()["config"] == {
        "url": "https://hooks.example.com/x",
        "headers": {},
        "template": None,
        "timeout": 10,
    }

    assert api.patch("/api/v1/channels/nope", json={"description": "x"}, headers=AUTH).status_code == 404


def test_delete_channel(api: FlaskClient, redis: redis_py.Redis, hook: HookSink) -> None:
    post(api, "/channels", webhook(hook))
    assert api.delete("/api/v1/channels/ops-hook", headers=AUTH).status_code == 204
    assert api.get("/api/v1/channels/ops-hook", headers=AUTH).status_code == 404
    assert api.delete("/api/v1/channels/ops-hook", headers=AUTH).status_code == 404
    assert redis.keys("alarmq:channel*") == []


def test_check_ids_names_the_field_for_alarms(redis: redis_py.Redis, hook: HookSink) -> None:
    channels.create(redis, webhook(hook))
    assert channels.check_ids(redis, ["ops-hook"]) == ["ops-hook"]
    assert channels.check_ids(redis, None) == []
    for value, message in (
        ("ops-hook", "channels must be a list"),
        (["ops-hook", "pager"], "channels[1] 'pager' is not a channel"),
        (["ops-hook", "ops-hook"], "channels names a channel twice"),
        ([3], "channels[0] must be a channel id"),
    ):
        with pytest.raises(channels.Invalid, match=message.replace("[", r"\[").replace("]", r"\]")):
            channels.check_ids(redis, value)


# -- messages and templates ------------------------------------------------------------


def test_message_for_each_kind() -> None:
    fired = channels.message_for(ALARM, "fired", FLIP)
    assert fired["subject"] == "[FIRING] Disk full on db1"
    assert fired["text"] == "[FIRING] Disk full on db1: disk above 95% (value 97.5)"
    assert (fired["since"], fired["value"], fired["message"]) == ("2026-01-01T00:00:00+00:00", 97.5, "97.5% used")

    resolved = channels.message_for(
        {**ALARM, "state": "ok"}, "resolved", {"old": "firing", "new": "ok", "reason": "recovered"}
    )
    assert resolved["subject"] == "[RESOLVED] Disk full on db1" and resolved["state"] == "ok"

    repeat = channels.message_for(ALARM, "repeat", None)
    assert repeat["subject"] == "[STILL FIRING] Disk full on db1"
    assert repeat["reason"] == "97.5% used" and "firing since 2026-01-01T00:00:00+00:00" in repeat["text"]

    # A name or a check message with line breaks cannot break a subject line.
    odd = channels.message_for({**ALARM, "name": "a\r\nBcc: x@example.com"}, "fired", FLIP)
    assert odd["subject"] == "[FIRING] a Bcc: x@example.com"


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ({"text": "{subject}: {reason}"}, {"text": "[FIRING] Disk full on db1: disk above 95%"}),
        (
            {"content": "**{alarm_name}** is {state}: {reason}"},
            {"content": "**Disk full on db1** is firing: disk above 95%"},
        ),
        (
            {"topic": "ops", "title": "{subject}", "message": "{text}", "priority": 4},
            {
                "topic": "ops",
                "title": "[FIRING] Disk full on db1",
                "priority": 4,
                "message": "[FIRING] Disk full on db1: disk above 95% (value 97.5)",
            },
        ),
        (
            {"v": "{value} at {since} {{literal}} {unknown}"},
            {"v": "97.5 at 2026-01-01T00:00:00+00:00 {literal} {unknown}"},
        ),
        (["{alarm_id}", 1, None, True], ["disk", 1, None, True]),
    ],
)
def test_templates_render_for_slack_discord_and_ntfy(template: Any, expected: Any) -> None:
    config = channels.validate_spec({"kind": "webhook", "config": {"url": "http://x/", "template": template}})["config"]
    assert channels.webhook_body(config, channels.message_for(ALARM, "fired", FLIP)) == expected


def test_placeholder_values_are_not_formatted_again() -> None:
    message = channels.message_for({**ALARM, "name": "{x.__class__} {alarm_id}"}, "fired", FLIP)
    assert channels.render("{alarm_name}", message) == "{x.__class__} {alarm_id}"


# -- delivery ----------------------------------------------------------------------------


def test_webhook_default_body_is_delivered_and_logged(
    redis: redis_py.Redis, settings: Settings, run_jobs: Callable[[], int], hook: HookSink
) -> None:
    channels.create(redis, webhook(hook, headers={"X-Token": "abc"}))
    [job_id] = notify(redis, settings)
    job = Job.fetch(job_id, connection=redis, serializer=jobs.SERIALIZER)
    assert (job.origin, job.retries_left, job.meta["task"]) == (keys.SCHEDULED_QUEUE, 5, "notify")
    assert redis.zscore(keys.jobs_index(), job_id) is not None  # listed by /api/v1/jobs

    run_jobs()
    [request] = hook.requests
    assert request["path"] == "/hook" and request["headers"]["x-token"] == "abc"
    assert request["headers"]["content-type"] == "application/json"
    assert request["json"] == {
        "kind": "fired",
        "subject": "[FIRING] Disk full on db1",
        "text": "[FIRING] Disk full on db1: disk above 95% (value 97.5)",
        "alarm": {
            "id": "disk",
            "name": "Disk full on db1",
            "state": "firing",
            "since": "2026-01-01T00:00:00+00:00",
            "reason": "disk above 95%",
            "value": 97.5,
            "message": "97.5% used",
            "url": None,
        },
    }
    [entry] = log_of(redis)
    assert (entry["channel"], entry["kind"], entry["outcome"], entry["attempt"], entry["status"]) == (
        "ops-hook",
        "fired",
        "sent",
        1,
        200,
    )
    assert entry["job"] == job_id and entry["at"] <= time.time()
    notified = events.read(redis, None, 100, types=["alarm.notified"])
    assert [e["data"]["alarm"] for e in notified] == ["disk"]


def test_slack_template_is_rendered(
    redis: redis_py.Redis, settings: Settings, run_jobs: Callable[[], int], hook: HookSink
) -> None:
    slack = {
        "text": "{subject}",
        "blocks": [
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": "*{alarm_name}* is {state} since {since}: {reason} {{raw}}"},
            }
        ],
    }
    channels.create(redis, webhook(hook, template=slack))
    notify(redis, settings, "resolved", state="ok", since=SINCE + 60)
    run_jobs()
    assert hook.requests[0]["json"] == {
        "text": "[RESOLVED] Disk full on db1",
        "blocks": [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "*Disk full on db1* is ok since 2026-01-01T00:01:00+00:00: disk above 95% {raw}",
                },
            }
        ],
    }


def test_email_is_delivered_with_subject_and_body(
    redis: redis_py.Redis, settings: Settings, run_jobs: Callable[[], int], mail: tuple[MailSink, int]
) -> None:
    sink, port = mail
    channels.create(redis, mailer(port, to=["ops@example.com", "db@example.com"]))
    notify(redis, settings, channels=["ops-mail"])
    run_jobs()
    [received] = sink.messages
    assert received["from"] == "alarmq@example.com"
    assert received["to"] == ["ops@example.com", "db@example.com"]
    message = received["email"]
    assert message["Subject"] == "[FIRING] Disk full on db1"
    body = message.get_content()
    assert "Alarm:   Disk full on db1 (disk)" in body
    assert "State:   firing since 2026-01-01T00:00:00+00:00" in body and "Value:   97.5" in body
    assert sink.logins == []
    assert log_of(redis)[0]["outcome"] == "sent" and log_of(redis)[0]["recipients"] == 2


def test_email_logs_in_and_a_wrong_password_fails_without_showing_it(
    redis: redis_py.Redis, settings: Settings, run_jobs: Callable[[], int], mail: tuple[MailSink, int]
) -> None:
    sink, port = mail
    channels.create(redis, mailer(port, username="alarmq", password=PASSWORD))
    notify(redis, settings, channels=["ops-mail"])
    run_jobs()
    assert sink.logins == [("alarmq", PASSWORD)]
    assert len(sink.messages) == 1

    channels.patch(redis, "ops-mail", {"config": {"password": "wrong-one"}})
    [job_id] = notify(redis, settings, "resolved", channels=["ops-mail"])
    assert "wrong-one" not in json.dumps(
        {k.decode(): v.decode(errors="replace") for k, v in redis.hgetall(f"rq:job:{job_id}").items()}
    )
    run_jobs()
    assert len(sink.messages) == 1
    failed = log_of(redis)[0]
    assert (failed["outcome"], failed["attempts"]) == ("failed", 6)
    assert "SMTPAuthenticationError" in failed["error"] and "wrong-one" not in failed["error"]


def test_delivery_is_retried_until_the_sink_answers(
    redis: redis_py.Redis, settings: Settings, run_jobs: Callable[[], int], hook: HookSink
) -> None:
    channels.create(redis, webhook(hook))
    hook.fail_next = 2
    [job_id] = notify(redis, settings)
    run_jobs()
    assert len(hook.requests) == 3
    log = log_of(redis)
    assert [(e["outcome"], e["attempt"]) for e in log] == [("sent", 3), ("retrying", 2), ("retrying", 1)]
    assert log[1]["error"] == "webhook answered 500: sink is down"
    assert jobs.fetch(redis, job_id).get_status().value == "finished"
    assert events.read(redis, None, 100, types=["alarm.notification_failed"]) == []


def test_delivery_that_exhausts_its_retries_is_logged_failed_with_an_event(
    redis: redis_py.Redis, settings: Settings, run_jobs: Callable[[], int], hook: HookSink
) -> None:
    channels.create(redis, webhook(hook))
    hook.fail_next = 100
    [job_id] = notify(redis, settings)
    run_jobs()
    assert len(hook.requests) == 1 + channels.RETRIES
    log = log_of(redis)
    assert [e["outcome"] for e in log] == ["failed"] + ["retrying"] * channels.RETRIES
    assert log[0] == {
        **log[0],
        "channel": "ops-hook",
        "kind": "fired",
        "attempts": 6,
        "job": job_id,
        "error": "webhook answered 500: sink is down",
    }
    [event] = events.read(redis, None, 100, types=["alarm.notification_failed"])
    assert event["data"]["alarm"] == "disk" and event["data"]["channel"] == "ops-hook"
    assert event["data"]["error"] == "webhook answered 500: sink is down"
    assert jobs.fetch(redis, job_id).get_status().value == "failed"


def test_unreachable_webhook_fails_visibly(
    redis: redis_py.Redis, settings: Settings, run_jobs: Callable[[], int]
) -> None:
    channels.create(redis, {**HOOK, "id": "ops-hook", "config": {"url": f"http://127.0.0.1:{free_port()}/x"}})
    notify(redis, settings)
    run_jobs()
    assert log_of(redis)[0]["outcome"] == "failed"
    assert log_of(redis)[0]["error"].startswith("webhook not reached: ConnectError")


def test_retries_back_off_exponentially(
    redis: redis_py.Redis,
    settings: Settings,
    run_jobs: Callable[[], int],
    hook: HookSink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(channels, "BACKOFF_BASE", 1)
    channels.create(redis, webhook(hook))
    hook.fail_next = 1
    [job_id] = notify(redis, settings)
    assert Job.fetch(job_id, connection=redis, serializer=jobs.SERIALIZER).retry_intervals == [1, 2, 4, 8, 16]
    run_jobs()
    # The retry waits its interval in the scheduled registry for the scheduler to move it.
    assert len(hook.requests) == 1
    assert jobs.fetch(redis, job_id).get_status().value == "scheduled"
    [entry] = log_of(redis)
    assert (entry["outcome"], entry["attempt"], entry["retry_in"]) == ("retrying", 1, 1)


def test_a_missing_channel_is_logged_failed_not_dropped(
    redis: redis_py.Redis, settings: Settings, run_jobs: Callable[[], int], hook: HookSink
) -> None:
    channels.create(redis, webhook(hook))
    assert notify(redis, settings, channels=["ops-hook", "gone"]) != []
    failed = log_of(redis)[0]
    assert (failed["channel"], failed["outcome"], failed["attempts"]) == ("gone", "failed", 0)

    # Deleted after the job was queued: one attempt, no pointless retries.
    channels.delete(redis, "ops-hook")
    run_jobs()
    assert hook.requests == []
    latest = log_of(redis)[0]
    assert (latest["channel"], latest["outcome"], latest["attempts"]) == ("ops-hook", "failed", 1)
    assert "was deleted" in latest["error"]
    assert len(events.read(redis, None, 100, types=["alarm.notification_failed"])) == 2


def test_only_notifying_kinds_are_queued(redis: redis_py.Redis, settings: Settings) -> None:
    with pytest.raises(ValueError, match="kind must be one of fired, resolved, repeat"):
        notify(redis, settings, "pending")
    assert notify(redis, settings, channels=[]) == []


def test_test_send_reaches_the_sink_once(
    api: FlaskClient, redis: redis_py.Redis, run_jobs: Callable[[], int], hook: HookSink, mail: tuple[MailSink, int]
) -> None:
    post(api, "/channels", webhook(hook))
    status, queued = post(api, "/channels/ops-hook/test")
    assert status == 202 and queued["status"] == "queued" and queued["url"] == f"/api/v1/jobs/{queued['id']}"
    run_jobs()
    [request] = hook.requests
    assert request["json"]["kind"] == "test"
    assert request["json"]["subject"] == "[TEST] alarmq test of channel ops-hook"
    assert api.get(queued["url"], headers=AUTH).get_json()["status"] == "finished"
    assert log_of(redis, channels.TEST_ALARM)[0]["outcome"] == "sent"

    # A test is tried once, so a broken channel shows at once.
    hook.fail_next = 1
    status, queued = post(api, "/channels/ops-hook/test")
    run_jobs()
    assert len(hook.requests) == 2
    assert api.get(queued["url"], headers=AUTH).get_json()["status"] == "failed"
    assert log_of(redis, channels.TEST_ALARM)[0]["outcome"] == "failed"

    sink, port = mail
    post(api, "/channels", mailer(port, username="alarmq", password=PASSWORD))
    post(api, "/channels/ops-mail/test")
    run_jobs()
    assert sink.messages[0]["email"]["Subject"] == "[TEST] alarmq test of channel ops-mail"
    assert post(api, "/channels/nope/test")[0] == 404
