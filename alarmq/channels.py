"""Own notification channels: validation, storage, the message an alarm sends, and delivery as RQ jobs.

A channel is data in Redis: its hash holds `spec` (`{"kind", "config",
"description"}` as JSON) with a `version` bumped under WATCH on every change.
Two kinds exist:

`webhook` POSTs JSON to `url`. Without a `template` the body is
`{"kind", "subject", "text", "alarm": {...}}`. A template is any JSON value whose
strings may hold placeholders, so the body fits what a service expects:

    Slack:   {"text": "{subject}: {reason}"}
    Discord: {"content": "**{alarm_name}** is {state}: {reason}"}
    ntfy:    {"topic": "ops", "title": "{subject}", "message": "{text}"}   (POST to the server root)

Placeholders: {alarm_id} {alarm_name} {state} {kind} (fired, resolved, repeat or
test) {reason} {since} (ISO 8601, UTC) {value} {message} (the last check's)
{url} {subject} {text}. An unknown `{name}` is left as written; `{{` and `}}`
are literal braces. Attribute and index access (`{x.y}`, `{x[0]}`), conversions
and format specs are refused when the channel is saved.

`email` sends through SMTP: `host`, `port` (default 465 with `ssl`, 587 with
`starttls`, else 25), `starttls` or `ssl`, optional `username` and `password`,
`sender`, `to` and `timeout`. The password is kept in Redis, since it is needed
to log in, but never shown (`"***"`), never put in a job and never logged.

A notification is one RQ job per channel on the scheduled queue, calling
`deliver` with retries and exponential backoff. Every outcome lands in the
alarm's notification log (`sent`, `retrying`, `failed`) and a final failure also
publishes `alarm.notification_failed`, so nothing is dropped silently. Test
sends (`send_test`) are logged under the alarm id `_test`, which no real alarm
can have.
"""

from __future__ import annotations

import json
import logging
import re
import smtplib
import ssl
import string
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from types import TracebackType
from typing import Any, cast
from urllib.parse import urlsplit

import redis
from rq import Callback, Retry
from rq.job import Job, get_current_job

from alarmq import events, jobs, keys
from alarmq.connection import Redis
from alarmq.errors import Conflict, Invalid, NotFound
from alarmq.settings import Settings
from alarmq.workers import JobStopped

log = logging.getLogger(__name__)

ID_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
KINDS = ("webhook", "email")
NOTIFY_KINDS = ("fired", "resolved", "repeat")
PLACEHOLDERS = ("alarm_id", "alarm_name", "state", "kind", "reason", "since", "value", "message", "url", "subject",
                "text")  # fmt: skip
WEBHOOK_FIELDS = ("url", "headers", "template", "timeout")
EMAIL_FIELDS = ("host", "port", "starttls", "ssl", "username", "password", "sender", "to", "timeout")
SECRET = "***"
"""What GET shows in place of a password or a secret header; sending it back keeps the stored value."""

TEST_ALARM = "_test"
"""The alarm id test sends are logged under; real alarm ids start with a letter or digit."""

RETRIES = 5
BACKOFF_BASE = 1
"""Seconds before the first retry; each later one waits twice as long (1, 2, 4, 8, 16). Tests set 0."""

LOG_CAP = 200
DEFAULT_TIMEOUT = 10
MAX_TIMEOUT = 120
MAX_TEMPLATE_BYTES = 16 * 1024
MAX_TEMPLATE_DEPTH = 10
MAX_HEADERS = 30
MAX_RECIPIENTS = 50
CAS_ATTEMPTS = 20
_HEADER_NAME_RE = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}")
_SECRET_HEADER_RE = re.compile(r"authorization|cookie|token|secret|key|password", re.IGNORECASE)
_HOST_RE = re.compile(r"[A-Za-z0-9.:\[\]_-]{1,253}")
# An ASCII address without quoting or comments: what every SMTP server takes.
ADDRESS_PATTERN = r"[\w!#$%&'*+/=?^`{|}~-]+(\.[\w!#$%&'*+/=?^`{|}~-]+)*@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*"
_ADDRESS_RE = re.compile(ADDRESS_PATTERN)
_FORMATTER = string.Formatter()


class DeliveryError(Exception):
    """A channel refused or could not take a notification; RQ retries the job."""


# -- validation ---------------------------------------------------------------------


def validate_id(channel_id: object) -> str:
    """Return `channel_id` if it is a valid channel id, or raise Invalid."""
    if not isinstance(channel_id, str) or not ID_RE.fullmatch(channel_id):
        raise Invalid(f"id must be 1-64 of a-z, 0-9, '_' and '-', starting with a letter or digit, got {channel_id!r}")
    return channel_id


def validate_spec(data: dict[str, Any], previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return a checked `{"kind", "config", "description"}` from `data`, or raise Invalid naming the field.

    `previous` is the stored config of the same kind: a secret sent back as "***" keeps its stored value.
    """
    unknown = sorted(set(data) - {"kind", "config", "description"})
    if unknown:
        raise Invalid(f"unknown field {unknown[0]!r}; a channel takes: id, kind, config, description")
    kind = data.get("kind")
    if kind not in KINDS:
        raise Invalid(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    config = data.get("config")
    if not isinstance(config, dict):
        raise Invalid(f"config must be an object with the {kind} settings, got {config!r}")
    description = data.get("description", "")
    if not isinstance(description, str) or len(description) > 500 or not _is_unicode(description):
        raise Invalid("description must be text of at most 500 characters")
    checker = _validate_webhook if kind == "webhook" else _validate_email
    return {"kind": kind, "config": checker(config, previous or {}), "description": description}


def _unknown(config: dict[str, Any], fields: tuple[str, ...], kind: str) -> None:
    unknown = sorted(set(config) - set(fields))
    if unknown:
        raise Invalid(f"unknown field 'config.{unknown[0]}'; a {kind} channel takes: {', '.join(fields)}")


def _validate_webhook(config: dict[str, Any], previous: dict[str, Any]) -> dict[str, Any]:
    _unknown(config, WEBHOOK_FIELDS, "webhook")
    config = {k: v for k, v in config.items() if v is not None}  # null means the default, as in a PATCH
    url = config.get("url")
    try:
        parts = urlsplit(url) if isinstance(url, str) else None
        host = parts.hostname if parts is not None else None
    except ValueError:  # a malformed host, like an unclosed IPv6 bracket
        parts = host = None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not host
        or len(cast(str, url)) > 2048
        or any(c.isspace() for c in cast(str, url))
    ):
        raise Invalid(f"config.url must be an http:// or https:// URL, got {url!r}")
    headers = {} if config.get("headers") is None else config["headers"]
    if not isinstance(headers, dict) or len(headers) > MAX_HEADERS:
        raise Invalid(f"config.headers must be an object of at most {MAX_HEADERS} header names to text values")
    old_headers = previous.get("headers") or {}
    clean_headers: dict[str, str] = {}
    for name, value in headers.items():
        if not _HEADER_NAME_RE.fullmatch(name):
            raise Invalid(f"config.headers has a bad header name {name!r}")
        # A secret header sent back as shown keeps its stored value.
        kept = old_headers[name] if value == SECRET and name in old_headers else value
        # HTTP sends header values as bytes: printable ASCII is what every server reads alike.
        if not isinstance(kept, str) or len(kept) > 4096 or not (kept.isascii() and kept.isprintable()):
            raise Invalid(f"config.headers.{name} must be one line of printable ASCII text, got {value!r}")
        clean_headers[name] = kept
    template = config.get("template")
    if template is not None:
        if not _is_unicode(template) or len(json.dumps(template)) > MAX_TEMPLATE_BYTES:
            raise Invalid(f"config.template must be JSON of at most {MAX_TEMPLATE_BYTES} bytes in valid Unicode")
        _check_template(template, "config.template", 0)
    return {
        "url": url,
        "headers": clean_headers,
        "template": template,
        "timeout": jobs.whole(config.get("timeout"), "config.timeout", 1, MAX_TIMEOUT, DEFAULT_TIMEOUT),
    }


def _check_template(value: object, path: str, depth: int) -> None:
    """Refuse any string in a template that is not plain text with `{name}` placeholders."""
    if depth > MAX_TEMPLATE_DEPTH:
        raise Invalid(f"config.template nests deeper than {MAX_TEMPLATE_DEPTH} levels at {path}")
    if isinstance(value, dict):
        for k, v in value.items():
            _check_template(v, f"{path}.{k}", depth + 1)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_template(v, f"{path}[{i}]", depth + 1)
    elif isinstance(value, str):
        hint = f"placeholders are {{{'}, {'.join(PLACEHOLDERS)}}}; write {{{{ and }}}} for literal braces"
        try:
            parsed = list(_FORMATTER.parse(value))
        except ValueError as exc:
            raise Invalid(f"{path} is not a valid template ({exc}); {hint}") from None
        for _, field, spec, conversion in parsed:
            # Only bare names: attribute or index access could reach into Python objects.
            if field is not None and (not field.isidentifier() or spec or conversion):
                raw = "{" + field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
                raise Invalid(f"{path} has {raw!r}, which is not a placeholder; {hint}")


def _validate_email(config: dict[str, Any], previous: dict[str, Any]) -> dict[str, Any]:
    _unknown(config, EMAIL_FIELDS, "email")
    config = {k: v for k, v in config.items() if v is not None}  # null means the default, as in a PATCH
    host = config.get("host")
    if not isinstance(host, str) or not _HOST_RE.fullmatch(host):
        raise Invalid(f"config.host must be the SMTP server's host name or address, got {host!r}")
    flags = {}
    for name in ("starttls", "ssl"):
        flags[name] = config.get(name, False)
        if not isinstance(flags[name], bool):
            raise Invalid(f"config.{name} must be true or false, got {flags[name]!r}")
    if flags["starttls"] and flags["ssl"]:
        raise Invalid("config.starttls and config.ssl exclude each other: ssl is SMTPS (port 465), starttls upgrades")
    port = None if config.get("port") is None else jobs.whole(config["port"], "config.port", 1, 65535, 0)
    username = config.get("username")
    password = config.get("password")
    if password == SECRET:
        if not previous.get("password"):
            raise Invalid(f"config.password {SECRET!r} is how a stored password is shown; send the real one")
        password = previous["password"]
    for name, value in (("username", username), ("password", password)):
        if value is not None and (not isinstance(value, str) or not value or len(value) > 512):
            raise Invalid(f"config.{name} must be non-empty text of at most 512 characters")
    if (username is None) != (password is None):
        raise Invalid("config.username and config.password go together: give both to log in, or neither")
    sender = config.get("sender")
    if not _is_address(sender):
        raise Invalid(f"config.sender must be an email address like alarmq@example.com, got {sender!r}")
    to = config.get("to")
    if isinstance(to, str):
        to = [to]
    if not isinstance(to, list) or not 1 <= len(to) <= MAX_RECIPIENTS:
        raise Invalid(f"config.to must be a list of 1 to {MAX_RECIPIENTS} email addresses, got {to!r}")
    for i, address in enumerate(to):
        if not _is_address(address):
            raise Invalid(f"config.to[{i}] must be an email address like ops@example.com, got {address!r}")
    return {
        "host": host,
        "port": port,
        "starttls": flags["starttls"],
        "ssl": flags["ssl"],
        "username": username,
        "password": password,
        "sender": sender,
        "to": to,
        "timeout": jobs.whole(config.get("timeout"), "config.timeout", 1, MAX_TIMEOUT, DEFAULT_TIMEOUT),
    }


def _is_address(value: object) -> bool:
    if not isinstance(value, str) or len(value) > 254 or not value.isascii():
        return False
    return _ADDRESS_RE.fullmatch(value) is not None and len(value.partition("@")[0]) <= 64


def _is_unicode(value: object) -> bool:
    """Return True if `value` encodes as UTF-8 (JSON input may carry lone surrogates, which cannot be sent)."""
    try:
        json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return False
    return True


def smtp_port(config: dict[str, Any]) -> int:
    """Return the port an email channel connects to: its own, or the one its TLS mode implies."""
    if config.get("port"):
        return int(config["port"])
    return 465 if config.get("ssl") else 587 if config.get("starttls") else 25


def check_ids(conn: Redis, value: object, field: str = "channels") -> list[str]:
    """Return `value` as a list of existing channel ids (an alarm's `channels`), or raise Invalid naming `field`."""
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > 20:
        raise Invalid(f"{field} must be a list of at most 20 channel ids, got {value!r}")
    for i, cid in enumerate(value):
        if not isinstance(cid, str) or not ID_RE.fullmatch(cid):
            raise Invalid(f"{field}[{i}] must be a channel id, got {cid!r}")
    if len(set(value)) != len(value):
        raise Invalid(f"{field} names a channel twice")
    with conn.pipeline(transaction=False) as pipe:
        for cid in value:
            pipe.exists(keys.channel(cid))
        found = pipe.execute()
    for i, (cid, exists) in enumerate(zip(value, found, strict=True)):
        if not exists:
            raise Invalid(f"{field}[{i}] {cid!r} is not a channel; GET /api/v1/channels lists them")
    return list(value)


# -- reading ---------------------------------------------------------------------


def load(conn: Redis, channel_id: str) -> dict[str, Any]:
    """Return the stored channel with its secrets, or raise NotFound."""
    raw = cast(dict[bytes, bytes], conn.hgetall(keys.channel(channel_id)))
    if not raw or b"spec" not in raw:
        raise NotFound(f"no channel {channel_id!r}")
    return _decode(channel_id, raw)


def _decode(channel_id: str, raw: dict[bytes, bytes]) -> dict[str, Any]:
    state = {k.decode(): v.decode() for k, v in raw.items()}
    return {
        "id": channel_id,
        **json.loads(state["spec"]),
        "version": int(state.get("version") or 0),
        "created_at": float(state["created_at"]) if state.get("created_at") else None,
        "updated_at": float(state["updated_at"]) if state.get("updated_at") else None,
    }


def list_all(conn: Redis) -> list[dict[str, Any]]:
    """Return every channel, sorted by id, with its secrets."""
    ids = sorted(m.decode() for m in cast(set[bytes], conn.smembers(keys.channels_index())))
    with conn.pipeline(transaction=False) as pipe:
        for cid in ids:
            pipe.hgetall(keys.channel(cid))
        raws = pipe.execute()
    return [_decode(cid, raw) for cid, raw in zip(ids, raws, strict=True) if raw and b"spec" in raw]


def describe(channel: dict[str, Any]) -> dict[str, Any]:
    """Return the channel as the API shows it: secrets replaced by "***"."""
    config = dict(channel["config"])
    if config.get("password"):
        config["password"] = SECRET
    if config.get("headers"):
        config["headers"] = {k: SECRET if _SECRET_HEADER_RE.search(k) else v for k, v in config["headers"].items()}
    if channel["kind"] == "email":
        config["port"] = smtp_port(config)
    return {**channel, "config": config}


def notifications(conn: Redis, alarm_id: str, limit: int = 50) -> list[dict[str, Any]]:
    """Return an alarm's notification log, newest first."""
    raw = cast(list[bytes], conn.lrange(keys.alarm_notifications(alarm_id), 0, max(limit, 1) - 1))
    return [json.loads(entry) for entry in raw]


# -- writing ---------------------------------------------------------------------------


def _update(conn: Redis, channel_id: str, change: Callable[[dict[str, Any] | None], dict[str, Any]]) -> None:
    """Apply `change` to the channel's spec under WATCH; retry quietly when another writer won."""
    key = keys.channel(channel_id)
    for _ in range(CAS_ATTEMPTS):
        with conn.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(key)  # type: ignore[no-untyped-call]
                raw = cast(dict[bytes, bytes], pipe.hgetall(key))
                current = _decode(channel_id, raw) if raw and b"spec" in raw else None
                spec = change(current)
                pipe.multi()
                now = time.time()
                fields: dict[str, Any] = {
                    "spec": json.dumps(spec),
                    "updated_at": now,
                    "version": (current or {}).get("version", 0) + 1,
                }
                if current is None:
                    fields["created_at"] = now
                pipe.hset(key, mapping=cast(Any, fields))
                pipe.sadd(keys.channels_index(), channel_id)
                pipe.execute()
            except redis.exceptions.WatchError:
                continue
        events.publish(conn, "channel.changed", {"channel": channel_id, "kind": spec["kind"]})
        return
    raise Conflict(f"channel {channel_id} is being changed by someone else; try again")


def create(conn: Redis, data: dict[str, Any]) -> dict[str, Any]:
    """Create a channel from API input; raise Conflict if the id is taken."""
    data = dict(data)
    channel_id = validate_id(data.pop("id", None))
    spec = validate_spec(data)

    def change(current: dict[str, Any] | None) -> dict[str, Any]:
        if current is not None:
            raise Conflict(f"channel {channel_id!r} exists; PATCH it or DELETE it first")
        return spec

    _update(conn, channel_id, change)
    return load(conn, channel_id)


def patch(conn: Redis, channel_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Change some fields of a channel.

    `config` is merged key by key into the stored one (null removes a key) unless
    `kind` changes, which replaces it. A secret sent back as "***" stays as stored.
    """
    if "id" in changes and changes["id"] != channel_id:
        raise Invalid("id cannot be changed; create a new channel instead")
    changes = {k: v for k, v in changes.items() if k != "id"}
    if "config" in changes and not isinstance(changes["config"], dict):
        raise Invalid(f"config must be an object with the channel's settings, got {changes['config']!r}")

    def change(current: dict[str, Any] | None) -> dict[str, Any]:
        if current is None:
            raise NotFound(f"no channel {channel_id!r}")
        kind = changes.get("kind", current["kind"])
        same_kind = kind == current["kind"]
        config = {**current["config"], **changes.get("config", {})} if same_kind else changes.get("config")
        if isinstance(config, dict):
            config = {k: v for k, v in config.items() if v is not None}
        merged = {"kind": kind, "config": config, "description": changes.get("description", current["description"])}
        unknown = sorted(set(changes) - set(merged))
        if unknown:
            raise Invalid(f"unknown field {unknown[0]!r}; a channel takes: id, kind, config, description")
        return validate_spec(merged, current["config"] if same_kind else None)

    _update(conn, channel_id, change)
    return load(conn, channel_id)


def delete(conn: Redis, channel_id: str) -> None:
    """Delete a channel; notifications still naming it are logged as failed."""
    if not conn.exists(keys.channel(channel_id)):
        raise NotFound(f"no channel {channel_id!r}")
    with conn.pipeline(transaction=True) as pipe:
        pipe.delete(keys.channel(channel_id))
        pipe.srem(keys.channels_index(), channel_id)
        pipe.execute()
    events.publish(conn, "channel.deleted", {"channel": channel_id})


# -- messages ----------------------------------------------------------------------


def message_for(alarm: dict[str, Any], kind: str, flip: dict[str, Any] | None) -> dict[str, Any]:
    """Return what a notification says: the placeholders' values, a one-line subject and text.

    `alarm` has id, name, state, since and last_result {value, message} (and
    optionally url, a link to it); `flip` is the state change {old, new, reason}
    that caused the notification, None for a repeat.
    """
    last = alarm.get("last_result") or {}
    name = _line(alarm.get("name") or alarm["id"])
    state = str(alarm.get("state") or (flip or {}).get("new") or "unknown")
    last_message = _line(last.get("message") or "")
    reason = _line((flip or {}).get("reason") or last_message or state)
    since = _iso(alarm.get("since"))
    value = last.get("value")
    value = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    heading = {"fired": "FIRING", "resolved": "RESOLVED", "repeat": "STILL FIRING", "test": "TEST"}.get(kind, kind)
    subject = f"[{heading}] {name}"
    text = f"{subject}: {reason}" + (f" (value {_number(value)})" if value is not None else "")
    if kind == "repeat" and since:
        text += f"; firing since {since}"
    return {
        "alarm_id": str(alarm["id"]),
        "alarm_name": name,
        "state": state,
        "kind": kind,
        "reason": reason,
        "since": since,
        "value": value,
        "message": last_message,
        "url": str(alarm.get("url") or ""),
        "subject": subject[:200],
        "text": text[:1000],
    }


def sample_message(channel_id: str) -> dict[str, Any]:
    """Return the message a test send delivers."""
    alarm = {
        "id": TEST_ALARM,
        "name": f"alarmq test of channel {channel_id}",
        "state": "ok",
        "since": time.time(),
        "last_result": {"value": None, "message": "a test message from alarmq; nothing is wrong"},
    }
    return message_for(alarm, "test", {"old": "ok", "new": "ok", "reason": "sent on request to test this channel"})


def render(template: Any, message: dict[str, Any]) -> Any:
    """Return `template` with the message's values put into its strings' placeholders."""
    values = _Keep({k: _text(message.get(k)) for k in PLACEHOLDERS})
    return _render(template, values)


class _Keep(dict[str, str]):
    """A format_map mapping that leaves unknown placeholders as they were written."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _render(value: Any, values: _Keep) -> Any:
    if isinstance(value, dict):
        return {k: _render(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_render(v, values) for v in value]
    if isinstance(value, str):
        return value.format_map(values)
    return value


def webhook_body(config: dict[str, Any], message: dict[str, Any]) -> Any:
    """Return the JSON a webhook channel POSTs for `message`."""
    if config.get("template") is not None:
        return render(config["template"], message)
    return {
        "kind": message["kind"],
        "subject": message["subject"],
        "text": message["text"],
        "alarm": {
            "id": message["alarm_id"],
            "name": message["alarm_name"],
            "state": message["state"],
            "since": message["since"] or None,
            "reason": message["reason"],
            "value": message["value"],
            "message": message["message"],
            "url": message["url"] or None,
        },
    }


def email_message(config: dict[str, Any], message: dict[str, Any]) -> EmailMessage:
    """Return the email an email channel sends for `message`."""
    email = EmailMessage()
    email["Subject"] = message["subject"]
    email["From"] = config["sender"]
    email["To"] = ", ".join(config["to"])
    email["Date"] = formatdate(localtime=False)
    email["Message-ID"] = make_msgid(domain=config["sender"].rpartition("@")[2])
    lines = [
        message["text"],
        "",
        f"Alarm:   {message['alarm_name']} ({message['alarm_id']})",
        f"State:   {message['state']}" + (f" since {message['since']}" if message["since"] else ""),
        f"Reason:  {message['reason']}",
    ]
    if message["value"] is not None:
        lines.append(f"Value:   {_number(message['value'])}")
    if message["message"]:
        lines.append(f"Check:   {message['message']}")
    if message["url"]:
        lines.append(f"Link:    {message['url']}")
    email.set_content("\n".join(lines) + "\n")
    return email


def _line(value: object) -> str:
    return " ".join(str(value).split())[:500]


def _iso(at: object) -> str:
    if isinstance(at, (int, float)) and not isinstance(at, bool):
        return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")
    return str(at) if at else ""


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else str(value)


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return _number(value)
    return str(value)


# -- delivery ------------------------------------------------------------------------


def enqueue_notifications(
    conn: Redis, settings: Settings, alarm: dict[str, Any], kind: str, flip: dict[str, Any] | None
) -> list[str]:
    """Queue one delivery job per channel the alarm names; return their job ids.

    A channel that no longer exists is logged as failed at once instead of queued.
    """
    if kind not in NOTIFY_KINDS:
        raise ValueError(f"kind must be one of {', '.join(NOTIFY_KINDS)}, got {kind!r}")
    message = message_for(alarm, kind, flip)
    job_ids: list[str] = []
    for channel_id in alarm.get("channels") or []:
        try:
            channel = load(conn, channel_id)
        except NotFound as exc:
            _record_failure(conn, str(alarm["id"]), channel_id, kind, exc.message, None, 0)
            continue
        job = _enqueue(conn, settings, channel, str(alarm["id"]), kind, message, retries=RETRIES, source="alarm")
        job_ids.append(job.id)
    return job_ids


def send_test(conn: Redis, settings: Settings, channel_id: str) -> Job:
    """Queue one test delivery to a channel, without retries so a problem shows at once; return its job.

    It is logged under the alarm id `_test` (TEST_ALARM).
    """
    channel = load(conn, channel_id)
    return _enqueue(conn, settings, channel, TEST_ALARM, "test", sample_message(channel_id), retries=0, source="test")


def _enqueue(
    conn: Redis,
    settings: Settings,
    channel: dict[str, Any],
    alarm_id: str,
    kind: str,
    message: dict[str, Any],
    *,
    retries: int,
    source: str,
) -> Job:
    # Exponential backoff; with BACKOFF_BASE 0 RQ requeues at once instead of scheduling.
    retry = Retry(max=retries, interval=[BACKOFF_BASE * 2**i for i in range(retries)]) if retries else None
    # Connect, TLS, login and send may each take the channel's timeout.
    timeout = 4 * int(channel["config"].get("timeout") or DEFAULT_TIMEOUT) + 10
    with conn.pipeline() as pipe:
        job = jobs.queue(conn, keys.SCHEDULED_QUEUE).enqueue_call(
            deliver,
            # Only ids and the message go into the job: the config (and its secrets) is read at delivery.
            kwargs={"channel_id": channel["id"], "alarm_id": alarm_id, "kind": kind, "message": message},
            timeout=timeout,
            result_ttl=settings.result_ttl,
            failure_ttl=settings.failure_ttl,
            description=f"notify {channel['id']} ({channel['kind']}): {kind} {alarm_id}",
            meta={
                "task": "notify",
                "source": source,
                "channel": channel["id"],
                "alarm": alarm_id,
                "kind": kind,
                "retries": retries,
            },
            retry=retry,
            on_failure=Callback(delivery_failed),
            on_stopped=Callback(delivery_stopped),
            pipeline=pipe,
        )
        jobs.index(pipe, job.id)
        pipe.execute()
    events.publish(conn, "job.queued", events.job_data(job, source=source))
    return job


def deliver(channel_id: str, alarm_id: str, kind: str, message: dict[str, Any]) -> dict[str, Any]:
    """Send `message` through the channel (run by a worker); raise so RQ retries on failure."""
    job = get_current_job()
    if job is None:
        raise RuntimeError("deliver runs as an RQ job; use enqueue_notifications or send_test")
    conn = job.connection
    try:
        channel = load(conn, channel_id)
    except NotFound:
        # No retry brings a deleted channel back; the attempt count stays right for the log.
        job.meta["gave_up_on"] = _attempt(job)
        job.retries_left = 0
        raise DeliveryError(f"channel {channel_id!r} was deleted") from None
    config = channel["config"]
    if channel["kind"] == "webhook":
        status = _post(config, webhook_body(config, message))
        outcome: dict[str, Any] = {"status": status}
    else:
        _send_email(config, email_message(config, message))
        outcome = {"recipients": len(config["to"])}
    attempt = _attempt(job)
    _record(
        conn,
        alarm_id,
        {"channel": channel_id, "kind": kind, "outcome": "sent", "attempt": attempt, "job": job.id, **outcome},
    )
    events.publish(
        conn,
        "alarm.notified",
        {"alarm": alarm_id, "channel": channel_id, "kind": kind, "attempt": attempt, "job": job.id},
    )
    log.info("notified %s of %s %s (attempt %d)", channel_id, kind, alarm_id, attempt)
    return {"channel": channel_id, "kind": kind, "attempt": attempt, **outcome}


def _post(config: dict[str, Any], body: Any) -> int:
    import httpx  # imported here so workers that never notify pay nothing for it

    try:
        response = httpx.post(
            config["url"],
            json=body,
            headers=config.get("headers") or {},
            timeout=config["timeout"],
            follow_redirects=False,
        )
    except httpx.HTTPError as exc:
        raise DeliveryError(f"webhook not reached: {type(exc).__name__}: {exc}") from None
    if not 200 <= response.status_code < 300:
        raise DeliveryError(f"webhook answered {response.status_code}: {_line(response.text)[:200]}")
    return response.status_code


def _send_email(config: dict[str, Any], email: EmailMessage) -> None:
    host, port, timeout = config["host"], smtp_port(config), config["timeout"]
    context = ssl.create_default_context()
    try:
        smtp = (
            smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
            if config["ssl"]
            else smtplib.SMTP(host, port, timeout=timeout)
        )
        with smtp:
            if config["starttls"]:
                smtp.starttls(context=context)
            if config.get("username"):
                smtp.login(config["username"], config["password"])
            smtp.send_message(email)
    except (smtplib.SMTPException, OSError) as exc:
        # The message names the server's answer, never the credentials.
        raise DeliveryError(f"email not sent via {host}:{port}: {type(exc).__name__}: {exc}") from None


def delivery_failed(
    job: Job,
    connection: Redis,
    exc_type: type[BaseException] | None,
    exc: BaseException | None,
    tb: TracebackType | None,
) -> None:
    """Log a failed delivery attempt (RQ calls this after each one) as retrying, or as failed when none are left."""
    kw = job.kwargs
    error = _line(
        f"{exc}" if isinstance(exc, DeliveryError) else f"{exc_type.__name__ if exc_type else 'Error'}: {exc}"
    )
    attempt = _attempt(job)
    if job.retries_left and not isinstance(exc, JobStopped):
        entry = {
            "channel": kw["channel_id"],
            "kind": kw["kind"],
            "outcome": "retrying",
            "attempt": attempt,
            "error": error[:300],
            "retry_in": job.get_retry_interval(),
            "job": job.id,
        }
        _record(connection, kw["alarm_id"], entry)
        log.warning(
            "notifying %s of %s %s failed (attempt %d), retrying: %s",
            kw["channel_id"],
            kw["kind"],
            kw["alarm_id"],
            attempt,
            error,
        )
        return
    _record_failure(connection, kw["alarm_id"], kw["channel_id"], kw["kind"], error, job.id, attempt)


def delivery_stopped(job: Job, connection: Redis) -> None:
    """Log a delivery an operator canceled while it ran (fork workers) as failed."""
    kw = job.kwargs
    _record_failure(
        connection, kw["alarm_id"], kw["channel_id"], kw["kind"], "canceled by an operator", job.id, _attempt(job)
    )


def _record_failure(
    conn: Redis, alarm_id: str, channel_id: str, kind: str, error: str, job_id: str | None, attempts: int
) -> None:
    entry = {
        "channel": channel_id,
        "kind": kind,
        "outcome": "failed",
        "error": error[:300],
        "attempts": attempts,
        "job": job_id,
    }
    _record(conn, alarm_id, entry)
    events.publish(conn, "alarm.notification_failed", {"alarm": alarm_id, **entry})
    log.error("notifying %s of %s %s failed after %d attempt(s): %s", channel_id, kind, alarm_id, attempts, error)


def _record(conn: Redis, alarm_id: str, entry: dict[str, Any]) -> None:
    with conn.pipeline(transaction=True) as pipe:
        pipe.lpush(keys.alarm_notifications(alarm_id), json.dumps({"at": time.time(), **entry}))
        pipe.ltrim(keys.alarm_notifications(alarm_id), 0, LOG_CAP - 1)
        pipe.execute()


def _attempt(job: Job) -> int:
    """Return which attempt of the job this is, counting from 1 (retries_left drops only after a failure)."""
    if job.meta.get("gave_up_on"):
        return int(job.meta["gave_up_on"])
    return int(job.meta.get("retries") or 0) - (job.retries_left or 0) + 1
