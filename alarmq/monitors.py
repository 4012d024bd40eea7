"""Own alarm definitions and their storage: validate specs, keep state, results, flips and logs in Redis.

An alarm's hash holds `spec` (what to check, how often, who to notify) and
`state` (the state machine's position), both JSON, plus counters. A result is
applied under WATCH (compare-and-set): two workers checking one alarm at once
both record their result, but only the first flips the state, so an alarm
never fires twice and sends one notification.
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any, cast

import redis

from alarmq import alarms, channels, events, keys, registry
from alarmq.alarms import Flip, Result, Rules, State
from alarmq.connection import Redis
from alarmq.errors import Conflict, Invalid, NotFound

ID_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
METRIC_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,99}")
KINDS = ("http", "tcp", "heartbeat", "threshold", "queue", "task")
QUEUE_CHECKS = ("depth", "failed_growth", "no_worker", "scheduler_stale", "schedule_missing")
FIELDS = ("name", "kind", "interval", "config", "failures_to_fire", "recoveries_to_resolve", "keep_firing_for",
          "channels", "repeat_every", "enabled", "description")  # fmt: skip
RESULTS_CAP = 100  # recent results for charts; 108 bytes each, so 10,000 alarms keep ~110 MB
FLIPS_CAP = 500
CAS_ATTEMPTS = 20


def number(where: str, value: object, low: float, high: float, whole: bool = False) -> float:
    """Return `value` as a number in [low, high], or raise Invalid naming `where`."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high
    if ok and whole and isinstance(value, float) and not value.is_integer():
        ok = False
    if not ok:
        kind = "a whole number" if whole else "a number"
        raise Invalid(f"{where} must be {kind} from {low:g} to {high:g}, got {value!r}")
    number = cast(float, value)
    return int(number) if whole else float(number)


def _text(where: str, value: object, limit: int = 2000) -> str:
    if not isinstance(value, str) or not value or len(value) > limit:
        raise Invalid(f"{where} must be non-empty text of at most {limit} characters, got {value!r}")
    return value


def _only(where: str, config: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(config) - set(allowed))
    if unknown:
        raise Invalid(f"{where} has no field {unknown[0]!r}; it takes: {', '.join(allowed)}")


def validate_config(kind: str, config: object) -> dict[str, Any]:
    """Return the checked config of a `kind` alarm, with defaults filled in, or raise Invalid."""
    if not isinstance(config, dict):
        raise Invalid("config must be an object")
    c = dict(config)
    if kind == "http":
        _only("config", c, ("url", "method", "headers", "expect_status", "body_contains", "body_not_contains",
                            "max_latency_ms", "verify_tls", "timeout"))  # fmt: skip
        url = _text("config.url", c.get("url"))
        if not url.startswith(("http://", "https://")):
            raise Invalid(f"config.url must start with http:// or https://, got {url!r}")
        method = c.get("method", "GET")
        if method not in ("GET", "HEAD", "POST", "PUT", "OPTIONS"):
            raise Invalid(f"config.method must be GET, HEAD, POST, PUT or OPTIONS, got {method!r}")
        headers = c.get("headers", {})
        if not isinstance(headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            raise Invalid("config.headers must be an object of header names to text values")
        expect = c.get("expect_status", [200])
        if not isinstance(expect, list) or not expect:
            raise Invalid("config.expect_status must be a list of HTTP status codes, like [200, 204]")
        expect = [number("config.expect_status[]", s, 100, 599, whole=True) for s in expect]
        for name in ("body_contains", "body_not_contains"):
            if c.get(name) is not None:
                _text(f"config.{name}", c[name])
        max_latency = c.get("max_latency_ms")
        if max_latency is not None:
            max_latency = number("config.max_latency_ms", max_latency, 1, 600_000)
        if not isinstance(c.get("verify_tls", True), bool):
            raise Invalid("config.verify_tls must be true or false")
        return {"url": url, "method": method, "headers": headers, "expect_status": expect,
                "body_contains": c.get("body_contains"), "body_not_contains": c.get("body_not_contains"),
                "max_latency_ms": max_latency, "verify_tls": c.get("verify_tls", True),
                "timeout": number("config.timeout", c.get("timeout", 10), 0.1, 120)}  # fmt: skip
    if kind == "tcp":
        _only("config", c, ("host", "port", "timeout"))
        return {"host": _text("config.host", c.get("host"), 255),
                "port": number("config.port", c.get("port"), 1, 65535, whole=True),
                "timeout": number("config.timeout", c.get("timeout", 5), 0.1, 120)}  # fmt: skip
    if kind == "heartbeat":
        _only("config", c, ("period", "grace"))
        return {"period": number("config.period", c.get("period"), 1, 366 * 86400, whole=True),
                "grace": number("config.grace", c.get("grace", 0), 0, 366 * 86400, whole=True)}  # fmt: skip
    if kind == "threshold":
        _only("config", c, ("metric", "above", "below", "recover", "for_seconds"))
        metric = c.get("metric")
        if not isinstance(metric, str) or not METRIC_RE.fullmatch(metric):
            raise Invalid(f"config.metric must be a metric name like 'disk.used_pct', got {metric!r}")
        if ("above" in c) == ("below" in c):
            raise Invalid("config needs exactly one of above or below (the bound that fires)")
        side = "above" if "above" in c else "below"
        bound = number(f"config.{side}", c[side], -1e18, 1e18)
        recover = number("config.recover", c.get("recover", bound), -1e18, 1e18)
        if (side == "above" and recover > bound) or (side == "below" and recover < bound):
            raise Invalid(
                f"config.recover must be on the healthy side of {side} {bound:g} (hysteresis), got {recover:g}"
            )
        return {"metric": metric, side: bound, "recover": recover,
                "for_seconds": number("config.for_seconds", c.get("for_seconds", 0), 0, 86400)}  # fmt: skip
    if kind == "queue":
        _only("config", c, ("check", "queue", "max", "window", "schedule"))
        check = c.get("check")
        if check not in QUEUE_CHECKS:
            raise Invalid(f"config.check must be one of {', '.join(QUEUE_CHECKS)}, got {check!r}")
        out: dict[str, Any] = {"check": check, "queue": c.get("queue", keys.DEFAULT_QUEUE)}
        if check in ("depth", "failed_growth"):
            out["max"] = number("config.max", c.get("max"), 0, 1e9, whole=True)
        if check == "failed_growth":
            out["window"] = number("config.window", c.get("window", 300), 1, 86400, whole=True)
        if check == "schedule_missing":
            out["schedule"] = _text("config.schedule", c.get("schedule"), 64)
        return out
    if kind == "task":
        _only("config", c, ("check", "kwargs"))
        check_fn = registry.get_check(c.get("check"))
        return {"check": check_fn.name, "kwargs": check_fn.validate(c.get("kwargs", {}))}
    raise Invalid(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")


def validate_spec(conn: Redis, data: dict[str, Any]) -> dict[str, Any]:
    """Return a complete, checked alarm spec, or raise Invalid naming the field."""
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise Invalid(f"unknown field {unknown[0]!r}; an alarm takes: id, {', '.join(FIELDS)}")
    kind = data.get("kind")
    if kind not in KINDS:
        raise Invalid(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    channel_ids = channels.check_ids(conn, data.get("channels", []))
    default_interval = 60
    spec = {
        "name": _text("name", data.get("name", "-"), 200),
        "kind": kind,
        "interval": number("interval", data.get("interval", default_interval), 1, 86400, whole=True),
        "config": validate_config(kind, data.get("config", {})),
        "failures_to_fire": number("failures_to_fire", data.get("failures_to_fire", 1), 1, 1000, whole=True),
        "recoveries_to_resolve": number(
            "recoveries_to_resolve", data.get("recoveries_to_resolve", 1), 1, 1000, whole=True
        ),
        "keep_firing_for": number("keep_firing_for", data.get("keep_firing_for", 0), 0, 86400),
        "channels": channel_ids,
        "repeat_every": number("repeat_every", data.get("repeat_every", 3600), 0, 30 * 86400, whole=True),
        "enabled": data.get("enabled", True),
        "description": data.get("description", ""),
    }
    if not isinstance(spec["enabled"], bool):
        raise Invalid(f"enabled must be true or false, got {spec['enabled']!r}")
    if not isinstance(spec["description"], str) or len(spec["description"]) > 500:
        raise Invalid("description must be text of at most 500 characters")
    return spec


def rules(spec: dict[str, Any]) -> Rules:
    """Return the state machine's rules for a spec."""
    return Rules(spec["failures_to_fire"], spec["recoveries_to_resolve"], spec["keep_firing_for"])


# -- storage ------------------------------------------------------------------------


def load(conn: Redis, alarm_id: str) -> dict[str, Any]:
    """Return the stored alarm (spec, state and counters), or raise NotFound."""
    raw = cast(dict[bytes, bytes], conn.hgetall(keys.alarm(alarm_id)))
    if not raw or b"spec" not in raw:
        raise NotFound(f"no alarm {alarm_id!r}")
    return _decode(alarm_id, raw)


def _decode(alarm_id: str, raw: dict[bytes, bytes]) -> dict[str, Any]:
    h = {k.decode(): v.decode() for k, v in raw.items()}
    state = json.loads(h.get("state") or "{}")
    return {
        "id": alarm_id,
        **json.loads(h["spec"]),
        **state,
        "last_result": json.loads(h["last_result"]) if h.get("last_result") else None,
        "silenced_until": float(h["silenced_until"]) if h.get("silenced_until") else None,
        "silence_reason": h.get("silence_reason") or None,
        "last_notified": float(h["last_notified"]) if h.get("last_notified") else None,
        "ping_token": h.get("ping_token") or None,
        "last_ping": float(h["last_ping"]) if h.get("last_ping") else None,
        "last_fail": float(h["last_fail"]) if h.get("last_fail") else None,
        "version": int(h.get("version", 0)),
    }


def list_all(conn: Redis) -> list[dict[str, Any]]:
    """Return every alarm, sorted by id."""
    ids = sorted(m.decode() for m in cast(set[bytes], conn.smembers(keys.alarms_index())))
    with conn.pipeline(transaction=False) as pipe:
        for aid in ids:
            pipe.hgetall(keys.alarm(aid))
        raws = pipe.execute()
    return [_decode(aid, raw) for aid, raw in zip(ids, raws, strict=True) if raw and b"spec" in raw]


def state_of(alarm: dict[str, Any]) -> State:
    """Return the state machine's view of a loaded alarm."""
    return State.from_dict(alarm)


def create(conn: Redis, data: dict[str, Any], now: float) -> dict[str, Any]:
    """Create an alarm from API input; a heartbeat gets a secret ping token."""
    data = dict(data)
    alarm_id = data.pop("id", None)
    if not isinstance(alarm_id, str) or not ID_RE.fullmatch(alarm_id):
        raise Invalid(f"id must be 1-64 of a-z, 0-9, '_' and '-', starting with a letter or digit, got {alarm_id!r}")
    data.setdefault("name", alarm_id)
    spec = validate_spec(conn, data)
    state = State(state="unknown" if spec["enabled"] else "disabled", since=now)
    fields: dict[str, Any] = {"spec": json.dumps(spec), "state": json.dumps(state.to_dict()), "version": 1,
                              "created_at": now}  # fmt: skip
    token = secrets.token_urlsafe(24) if spec["kind"] == "heartbeat" else None
    if token:
        fields["ping_token"] = token
        fields["last_ping"] = now  # the period starts now, not at the epoch
    with conn.pipeline(transaction=True) as pipe:
        try:
            pipe.watch(keys.alarm(alarm_id))  # type: ignore[no-untyped-call]
            if pipe.exists(keys.alarm(alarm_id)):
                raise Conflict(f"alarm {alarm_id!r} exists; change it or delete it first")
            pipe.multi()
            pipe.hset(keys.alarm(alarm_id), mapping=cast(Any, fields))
            pipe.sadd(keys.alarms_index(), alarm_id)
            _index(pipe, alarm_id, spec, now)
            if token:
                pipe.set(keys.heartbeat_token(token), alarm_id)
            pipe.execute()
        except redis.exceptions.WatchError:
            raise Conflict(f"alarm {alarm_id!r} was just created by someone else") from None
    events.publish(conn, "alarm.changed", {"id": alarm_id, "change": "created"})
    return load(conn, alarm_id)


def _index(pipe: Any, alarm_id: str, spec: dict[str, Any], now: float, due: float | None = None) -> None:
    """Queue the due-set, interval and metric index updates for a spec."""
    pipe.hset(keys.alarms_intervals(), alarm_id, spec["interval"])
    if spec["enabled"]:
        pipe.zadd(keys.alarms_due(), {alarm_id: now if due is None else due})
    else:
        pipe.zrem(keys.alarms_due(), alarm_id)
    if spec["kind"] == "threshold":
        pipe.sadd(keys.metric_alarms(spec["config"]["metric"]), alarm_id)


def patch(conn: Redis, alarm_id: str, changes: dict[str, Any], now: float) -> dict[str, Any]:
    """Change some fields; a new interval or enabling takes effect at once (it is checked now)."""
    current = load(conn, alarm_id)
    if "id" in changes and changes["id"] != alarm_id:
        raise Invalid("id cannot be changed; create a new alarm instead")
    if "kind" in changes and changes["kind"] != current["kind"]:
        raise Invalid("kind cannot be changed; create a new alarm instead")
    merged = {f: current[f] for f in FIELDS}
    merged.update({k: v for k, v in changes.items() if k != "id"})
    spec = validate_spec(conn, merged)

    def change(state: State) -> tuple[State, Flip | None]:
        if spec["enabled"] and state.state == "disabled":
            return alarms.enable(state, now)
        if not spec["enabled"]:
            return alarms.disable(state, now)
        return state, None

    coming_back = spec["enabled"] and not current["enabled"]
    # A heartbeat's period starts again when it comes back, instead of firing
    # at once for the pings it could not get while it was off.
    extra = {"last_ping": now} if coming_back and spec["kind"] == "heartbeat" else None
    _transact(conn, alarm_id, change, now, spec=spec, extra=extra)
    # Only a new interval or coming back makes the alarm due now; a rename does not.
    due = None if coming_back or spec["interval"] != current["interval"] else conn.zscore(keys.alarms_due(), alarm_id)
    with conn.pipeline(transaction=True) as pipe:
        if current["kind"] == "threshold":
            pipe.srem(keys.metric_alarms(current["config"]["metric"]), alarm_id)
        _index(pipe, alarm_id, spec, now, None if due is None else float(due))
        pipe.execute()
    events.publish(conn, "alarm.changed", {"id": alarm_id, "change": "updated", "fields": sorted(changes)})
    return load(conn, alarm_id)


def delete(conn: Redis, alarm_id: str) -> None:
    """Delete an alarm with its results, flips and notification log."""
    current = load(conn, alarm_id)
    with conn.pipeline(transaction=True) as pipe:
        pipe.delete(keys.alarm(alarm_id), keys.alarm_results(alarm_id), keys.alarm_flips(alarm_id),
                    keys.alarm_notifications(alarm_id), keys.alarm_uptime(alarm_id))  # fmt: skip
        pipe.srem(keys.alarms_index(), alarm_id)
        pipe.zrem(keys.alarms_due(), alarm_id)
        pipe.hdel(keys.alarms_intervals(), alarm_id)
        if current["ping_token"]:
            pipe.delete(keys.heartbeat_token(current["ping_token"]))
        if current["kind"] == "threshold":
            pipe.srem(keys.metric_alarms(current["config"]["metric"]), alarm_id)
        pipe.execute()
    events.publish(conn, "alarm.changed", {"id": alarm_id, "change": "deleted"})


def _transact(
    conn: Redis,
    alarm_id: str,
    change: Any,
    now: float,
    *,
    result: Result | None = None,
    spec: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], Flip | None, str | None]:
    """Apply `change(state) -> (state, flip)` under WATCH; return (alarm, flip, notification kind)."""
    key = keys.alarm(alarm_id)
    for _ in range(CAS_ATTEMPTS):
        with conn.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(key)  # type: ignore[no-untyped-call]
                raw = cast(dict[bytes, bytes], pipe.hgetall(key))
                if not raw or b"spec" not in raw:
                    raise NotFound(f"no alarm {alarm_id!r}")
                alarm = _decode(alarm_id, raw)
                new_state, flip = change(state_of(alarm))
                effective = spec or alarm
                silenced = bool(alarm["silenced_until"] and alarm["silenced_until"] > now)
                notify = alarms.notification_due(
                    flip, new_state, silenced=silenced, last_sent=alarm["last_notified"],
                    repeat_every=effective["repeat_every"], now=now,
                ) if result is not None or flip is not None else None  # fmt: skip
                fields: dict[str, Any] = {"state": json.dumps(new_state.to_dict()), "version": alarm["version"] + 1}
                if spec is not None:
                    fields["spec"] = json.dumps(spec)
                if result is not None:
                    fields["last_result"] = json.dumps(result.to_dict())
                if notify and effective["channels"]:
                    fields["last_notified"] = now
                fields.update(extra or {})
                pipe.multi()
                pipe.hset(key, mapping=cast(Any, fields))
                if result is not None:
                    pipe.lpush(keys.alarm_results(alarm_id), json.dumps(result.to_dict()))
                    pipe.ltrim(keys.alarm_results(alarm_id), 0, RESULTS_CAP - 1)
                    # Uptime over 30 days from hourly counters: the capped result
                    # list holds too little history, and 30 days of it too much memory.
                    hour = int(result.at // 3600)
                    pipe.hincrby(keys.alarm_uptime(alarm_id), f"{hour}:n", 1)
                    pipe.hincrby(keys.alarm_uptime(alarm_id), f"{hour}:ok", int(result.ok))
                if flip is not None:
                    pipe.lpush(keys.alarm_flips(alarm_id), json.dumps(flip.to_dict()))
                    pipe.ltrim(keys.alarm_flips(alarm_id), 0, FLIPS_CAP - 1)
                pipe.execute()
            except redis.exceptions.WatchError:
                continue  # another worker applied its result first: re-evaluate on top of it
        return {**alarm, **new_state.to_dict(), **(spec or {})}, flip, notify
    raise Conflict(f"alarm {alarm_id} is being changed by someone else; try again")


def record(
    conn: Redis, alarm_id: str, result: Result, now: float, loaded: dict[str, Any] | None = None
) -> tuple[dict[str, Any], Flip | None, str | None]:
    """Apply one check result: store it, move the state machine, decide on a notification; publish events.

    `loaded` saves a read when the caller has the alarm; its rules are used,
    while the state is re-read under WATCH as always.
    """
    alarm_now = loaded or load(conn, alarm_id)
    alarm, flip, notify = _transact(
        conn, alarm_id, lambda s: alarms.evaluate(rules(alarm_now), s, result), now, result=result
    )
    data = {"id": alarm_id, "name": alarm["name"], "state": alarm["state"], "result": result.to_dict()}
    events.publish(conn, "alarm.checked", data)
    if flip is not None and flip.event:
        events.publish(conn, flip.event, {**data, "flip": flip.to_dict()})
    return alarm, flip, notify


def act(conn: Redis, alarm_id: str, action: str, now: float, **options: Any) -> dict[str, Any]:
    """Acknowledge, silence, unsilence, enable or disable an alarm; publish what changed."""
    extra: dict[str, Any] = {}
    change: Any = lambda s: (s, None)  # noqa: E731
    if action == "ack":

        def change(state: State) -> tuple[State, Flip | None]:
            # Judged inside the compare-and-set: the alarm may resolve meanwhile.
            if state.state != "firing":
                raise Conflict(f"alarm {alarm_id} is not firing; there is nothing to acknowledge")
            return alarms.acknowledge(state), None

        event = "alarm.acked"
    elif action == "silence":
        if options["until"] <= now:
            raise Invalid("a silence must end in the future")
        extra = {"silenced_until": options["until"], "silence_reason": options.get("reason") or ""}
        event = "alarm.silenced"
    elif action == "unsilence":
        extra = {"silenced_until": "", "silence_reason": ""}
        event = "alarm.silenced"
    elif action in ("enable", "disable"):
        return patch(conn, alarm_id, {"enabled": action == "enable"}, now)
    else:  # pragma: no cover - the API only routes the actions above
        raise Invalid(f"unknown action {action!r}")
    _transact(conn, alarm_id, change, now, extra=extra)
    events.publish(conn, event, {"id": alarm_id, "action": action, **{k: v for k, v in extra.items() if v != ""}})
    return load(conn, alarm_id)


def uptime(conn: Redis, alarm_id: str, now: float) -> dict[str, float | None]:
    """Return the share of passing checks over 24 h, 7 d and 30 d, from hourly counters; drop older hours."""
    return uptimes(conn, [alarm_id], now)[alarm_id]


def uptimes(conn: Redis, alarm_ids: list[str], now: float) -> dict[str, dict[str, float | None]]:
    """Return `uptime` of many alarms with one round trip (a list of 1,000 alarms read them one by one)."""
    with conn.pipeline(transaction=False) as pipe:
        for alarm_id in alarm_ids:
            pipe.hgetall(keys.alarm_uptime(alarm_id))
        raws = cast(list[dict[bytes, bytes]], pipe.execute())
    found: dict[str, dict[str, float | None]] = {}
    stale: dict[str, list[str]] = {}
    for alarm_id, raw in zip(alarm_ids, raws, strict=True):
        found[alarm_id], stale[alarm_id] = _shares(raw, now)
    if any(stale.values()):
        with conn.pipeline(transaction=False) as pipe:
            for alarm_id, fields in stale.items():
                if fields:
                    pipe.hdel(keys.alarm_uptime(alarm_id), *fields)
            pipe.execute()
    return found


def _shares(raw: dict[bytes, bytes], now: float) -> tuple[dict[str, float | None], list[str]]:
    """Return the uptime shares in hourly counters, and the counters older than 31 days."""
    counts: dict[int, dict[str, int]] = {}
    for field, value in raw.items():
        hour, _, kind = field.decode().partition(":")
        counts.setdefault(int(hour), {})[kind] = int(value)
    current = int(now // 3600)
    stale = [f"{h}:{k}" for h, c in counts.items() if current - h > 31 * 24 for k in c]
    shares: dict[str, float | None] = {}
    for name, hours in (("24h", 24), ("7d", 7 * 24), ("30d", 30 * 24)):
        window = [c for h, c in counts.items() if current - h < hours]
        total = sum(c.get("n", 0) for c in window)
        shares[name] = round(sum(c.get("ok", 0) for c in window) / total, 6) if total else None
    return shares, stale


def describe_all(conn: Redis, now: float) -> list[dict[str, Any]]:
    """Return every alarm as the API shows it, reading their uptime counters in one round trip."""
    found = list_all(conn)
    shares = uptimes(conn, [a["id"] for a in found], now)
    return [describe(conn, a, now, shares[a["id"]]) for a in found]


def history(conn: Redis, key: str, limit: int) -> list[dict[str, Any]]:
    """Return the newest `limit` entries of a capped JSON list."""
    return [json.loads(e) for e in cast(list[bytes], conn.lrange(key, 0, limit - 1))]


def describe(
    conn: Redis, alarm: dict[str, Any], now: float, shares: dict[str, float | None] | None = None
) -> dict[str, Any]:
    """Return the alarm as the API shows it, with uptime (read unless given) and its ping URL."""
    shown = dict(alarm)
    shown["uptime"] = uptime(conn, alarm["id"], now) if shares is None else shares
    shown["silenced"] = bool(alarm["silenced_until"] and alarm["silenced_until"] > now)
    if alarm["ping_token"]:
        shown["ping_url"] = f"/api/v1/heartbeats/{alarm['ping_token']}"
    shown.pop("ping_token", None)
    return shown
