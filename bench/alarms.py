"""Measure alarm checking at scale: due-to-check lag, checks per second, CPU and memory, and time to fire.

Run with alarmq's venv: `.venv/bin/python bench/alarms.py [--quick]`. It starts its own redis-server on a free
port from 6441 (never :6379), a fast local HTTP target (an asyncio server in its own process, HTTP/1.1 keep-alive,
200 "ok"), `alarmq scheduler` and `alarmq worker --concurrency 2` as real processes. For each size (1,000 and
10,000 `http` alarms on a 60 s interval) it spreads the alarms' due times evenly over one interval, starting a
couple of seconds ahead, and follows every check through the event stream until each alarm was checked once (or a
drain deadline passes). Progress goes to stderr; stdout gets exactly one JSON line. Every wait has a deadline and
every process it starts is stopped with its whole tree, also on errors.

Each size first makes all its alarms due at the same moment (as right after a bulk import, which is also how
`monitors.create` schedules them) and times how fast that backlog is checked: `burst` gives checks_per_s (from the
due time; checks_per_s_busy from the first check start), the lag from the common due time, the CPU per check and
the probe's time to fire while the backlog lasts; it also moves every alarm from `unknown` to `ok`, so the interval
that follows measures steady checks without flips.

Keys of the interval, per size: lag_ms is check start (the result's `at`) minus the alarm's due time; record_lag_ms
is when the result was applied (the `alarm.checked` event's stream id) minus the due time; checks_per_s_window
counts results applied within the 60 s window, checks_per_s_run all of them from the first due time to the last
result. batches splits the lag of the `run_checks` jobs: claim_ms (enqueued minus the batch's earliest due time),
queue_ms (started minus enqueued) and run_ms; check_alarms.start_ms is each `check_alarms` run's start minus its
slot. CPU is user+system time of each process tree (reaped children included) over the window, in % of one core;
memory is the summed RSS/PSS of each tree at the end of the window. The probe is one extra alarm with a 1 s interval
on a second target that is taken down (listener closed, connections aborted: refused) and up again in cycles during
the window: probe.firing_s is the time from each take-down until the alarm's state reads `firing` (polled every
20 ms); the goal is at most interval + 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import importlib.metadata
import json
import math
import os
import platform
import random
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, cast

from _common import (
    Processes,
    alarmq_env,
    free_port,
    log,
    raise_on_sigterm,
    start_redis,
    tree_memory,
    tree_pids,
    wait_until,
)
from rq.job import Job
from rq.registry import FailedJobRegistry, FinishedJobRegistry

from alarmq import connection, engine, jobs, keys, monitors, registry
from alarmq.connection import Redis
from alarmq.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-token-0123456789abcdef"
CONCURRENCY = 2
INTERVAL = 60
SIZES = (1000, 10_000)
LEAD = 3.0  # seconds between spreading the due times and the first one
PROBE_ID = "probe"
PROBE_INTERVAL = 1
PROBE_DEADLINE = 10.0
BURST_DEADLINE = 60.0
READY_DEADLINE = 60.0
BUDGET = 340.0  # the whole run stays under 6 minutes
CLK_TCK = os.sysconf("SC_CLK_TCK")
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


# -- the HTTP target (runs in its own process) ---------------------------------------


class TargetProtocol(asyncio.Protocol):
    """Answer every request on a keep-alive connection with 200 "ok"; /stats tells the request count."""

    requests = 0
    open: ClassVar[set[asyncio.Transport]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Start a connection with an empty buffer."""
        self.transport = cast(asyncio.Transport, transport)
        self.buffer = b""
        TargetProtocol.open.add(self.transport)

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget a closed connection."""
        TargetProtocol.open.discard(self.transport)

    def data_received(self, data: bytes) -> None:
        """Answer each complete request head in the buffer (requests carry no body)."""
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
            path = head.split(b" ", 2)[1] if head.count(b" ") >= 2 else b"/"
            if path == b"/stats":
                body = json.dumps({"requests": TargetProtocol.requests}).encode()
                self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            else:
                TargetProtocol.requests += 1
                self.transport.write(RESPONSE)
            if b"connection: close" in head.lower():
                self.transport.close()
                return


def serve_target(port: int) -> None:
    """Serve the target on 127.0.0.1:`port` until SIGTERM; SIGUSR1 takes it down (refused), SIGUSR2 up again."""

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        stop = loop.create_future()
        held: dict[str, asyncio.Server] = {}
        pending: set[asyncio.Task[None]] = set()

        async def listen() -> None:
            held["server"] = await loop.create_server(TargetProtocol, "127.0.0.1", port, backlog=1024)

        def down() -> None:
            if "server" in held:
                held.pop("server").close()
            for transport in list(TargetProtocol.open):
                transport.abort()

        def up() -> None:
            if "server" not in held:
                task = loop.create_task(listen())
                pending.add(task)
                task.add_done_callback(pending.discard)

        await listen()
        loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
        loop.add_signal_handler(signal.SIGUSR1, down)
        loop.add_signal_handler(signal.SIGUSR2, up)
        await stop
        down()

    asyncio.run(serve())


def target_requests(port: int) -> int | None:
    """Return how many requests the target on `port` has answered, or None if it does not answer."""
    try:
        client = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        client.request("GET", "/stats")
        return int(json.loads(client.getresponse().read())["requests"])
    except (OSError, ValueError, KeyError):
        return None


# -- process accounting ------------------------------------------------------------


def cpu_ticks(pid: int) -> int:
    """Return utime+stime+cutime+cstime of one process in clock ticks, 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0
    return sum(int(v) for v in fields[11:15])


def tree_cpu(root: int) -> float:
    """Return the CPU seconds of `root`'s tree, children it reaped included."""
    return sum(cpu_ticks(pid) for pid in tree_pids(root)) / CLK_TCK


def own_cpu() -> float:
    """Return this process's user+system CPU seconds."""
    t = os.times()
    return t.user + t.system


def to_epoch(moment: datetime | None) -> float | None:
    """Return an RQ timestamp (naive UTC or aware) as epoch seconds."""
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def percentiles(values: Sequence[float], digits: int = 1) -> dict[str, float | int | None]:
    """Return n, p50, p90, p99 and max of `values` (nearest rank)."""
    if not values:
        return {"n": 0, "p50": None, "p90": None, "p99": None, "max": None}
    ordered = sorted(values)

    def rank(q: float) -> float:
        return round(ordered[max(0, math.ceil(q * len(ordered)) - 1)], digits)

    return {"n": len(ordered), "p50": rank(0.5), "p90": rank(0.9), "p99": rank(0.99), "max": round(ordered[-1], digits)}


# -- the stack -----------------------------------------------------------------------


@dataclass
class Bench:
    """The private Redis, the targets, the alarmq processes and the bench's own client."""

    procs: Processes
    workdir: Path
    redis_url: str
    target_port: int
    probe_port: int
    conn: Redis = field(init=False)
    env: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        """Connect and build the environment every alarmq process gets."""
        settings = Settings(redis_url=self.redis_url, api_token=TOKEN, data_dir=self.workdir / "data")
        self.conn = connection.connect(settings)
        self.env = alarmq_env(self.redis_url, TOKEN, self.workdir / "data")

    def start_alarmq(self, name: str, args: list[str]) -> None:
        """Start `python -m alarmq ARGS` as process `name`."""
        self.procs.start(name, [sys.executable, "-m", "alarmq", *args], self.env, self.workdir)

    def start_target(self, name: str, port: int) -> None:
        """Start this script's HTTP target on `port` and wait until it answers."""
        self.procs.start(name, [sys.executable, __file__, "--serve", str(port)], self.env, self.workdir)
        wait_until(lambda: self.procs.pid(name) > 0 and target_requests(port) is not None, 15, f"{name} answers")

    def pids(self) -> dict[str, int]:
        """Return the root pid of every measured process tree."""
        return {n: self.procs.pid(n) for n in ("worker", "scheduler", "redis", "target")}

    def ready(self) -> bool:
        """Return True once the scheduler leads and both worker processes are alive."""
        self.procs.pid("worker")
        self.procs.pid("scheduler")
        leader = self.conn.get(keys.scheduler_leader()) is not None
        return leader and len(self.conn.keys(keys.worker_alive("*"))) >= CONCURRENCY

    def idle(self) -> bool:
        """Return True when the scheduled queue is empty and no job runs there (besides the 1 s tick)."""
        queue = jobs.queue(self.conn, keys.SCHEDULED_QUEUE)
        return queue.count == 0 and queue.started_job_registry.count <= 1


def create_alarms(conn: Redis, ids: Sequence[str], url: str) -> None:
    """Create one http alarm per id on a 60 s interval through alarmq's own create."""
    now = time.time()
    for aid in ids:
        monitors.create(conn, {"id": aid, "kind": "http", "interval": INTERVAL, "config": {"url": url}}, now)


def spread_due(conn: Redis, ids: Sequence[str], start: float, span: float) -> dict[str, float]:
    """Give the alarms due times spread evenly over `span` seconds from `start`; return them."""
    due = {aid: start + i * span / len(ids) for i, aid in enumerate(ids)}
    items = list(due.items())
    with conn.pipeline(transaction=False) as pipe:
        for chunk in range(0, len(items), 1000):
            pipe.zadd(keys.alarms_due(), dict(items[chunk : chunk + 1000]))
        pipe.execute()
    return due


def unschedule(conn: Redis, ids: Sequence[str]) -> None:
    """Take the alarms out of the due set (they stay stored)."""
    for chunk in range(0, len(ids), 1000):
        conn.zrem(keys.alarms_due(), *ids[chunk : chunk + 1000])


def alarm_state(conn: Redis, alarm_id: str) -> str | None:
    """Return the alarm's state as stored (what the API and the browser show)."""
    raw = conn.hget(keys.alarm(alarm_id), "state")
    return json.loads(cast(bytes, raw))["state"] if raw else None


class EventReader:
    """Read `alarm.checked` and `alarm.fired` events from the stream incrementally."""

    def __init__(self, conn: Redis) -> None:
        self.conn = conn
        last = cast(list[Any], conn.xrevrange(keys.events_stream(), count=1))
        self.last = last[0][0].decode() if last else "0-0"

    def read(self, on_event: Callable[[float, str, dict[str, Any]], None]) -> int:
        """Call `on_event(applied_at, type, data)` for each new alarm event; return how many entries were read."""
        total = 0
        while True:
            entries = cast(list[Any], self.conn.xrange(keys.events_stream(), min=f"({self.last}", count=5000))
            for entry_id, fields in entries:
                self.last = entry_id.decode()
                kind = fields[b"type"].decode()
                if kind in ("alarm.checked", "alarm.fired"):
                    on_event(int(self.last.split("-")[0]) / 1000, kind, json.loads(fields[b"data"]))
            total += len(entries)
            if len(entries) < 5000:
                return total


class JobCollector:
    """Collect timings of finished `run_checks` and `check_alarms` jobs before their results expire."""

    def __init__(self, conn: Redis) -> None:
        self.conn = conn
        self.registry = FinishedJobRegistry(keys.SCHEDULED_QUEUE, connection=conn, serializer=jobs.SERIALIZER)
        self.seen: set[str] = set()
        self.batches: list[dict[str, float]] = []
        self.ticks: list[dict[str, float]] = []

    def collect(self, since: float) -> None:
        """Fetch the newly finished jobs and keep the timings of those that started after `since`."""
        fresh = [j for j in self.registry.get_job_ids() if j not in self.seen]
        self.seen.update(fresh)
        for start in range(0, len(fresh), 200):
            found = Job.fetch_many(fresh[start : start + 200], connection=self.conn, serializer=jobs.SERIALIZER)
            for job in found:
                if job is not None:
                    self._keep(job, since)

    def _keep(self, job: Job, since: float) -> None:
        enqueued, started, ended = (to_epoch(t) for t in (job.enqueued_at, job.started_at, job.ended_at))
        if enqueued is None or started is None or ended is None or started < since:
            return
        task = str(job.meta.get("task", ""))
        if task == "run_checks" and len(job.args) > 1 and job.args[1]:
            ids, due = job.args
            if ids == [PROBE_ID]:
                return
            claim, queue, run = enqueued - min(due), started - enqueued, ended - started
            self.batches.append({"size": len(ids), "claim_ms": claim * 1000, "queue_ms": queue * 1000,
                                 "run_ms": run * 1000})  # fmt: skip
        elif task.endswith("check_alarms") and "slot" in job.meta:
            self.ticks.append(
                {"start_ms": (started - float(job.meta["slot"])) * 1000, "run_ms": (ended - started) * 1000}
            )


# -- one size ---------------------------------------------------------------------------


def arm_probe(bench: Bench) -> None:
    """Put the probe alarm (1 s interval) in the due set and wait until it reads `ok`."""
    os.killpg(bench.procs.pid("probe-target"), signal.SIGUSR2)
    bench.conn.zadd(keys.alarms_due(), {PROBE_ID: time.time()})
    wait_until(lambda: alarm_state(bench.conn, PROBE_ID) == "ok", 30, "the probe alarm to read ok", every=0.1)


class Probe:
    """Take the probe's target down and up again in cycles; time each down until the alarm reads `firing`."""

    def __init__(self, bench: Bench, start: float, stop: float, deadline: float = PROBE_DEADLINE) -> None:
        self.bench = bench
        self.deadline = deadline
        self.stop = stop
        self.next_down = start
        self.phase = "up"
        self.down_at = 0.0
        self.since = 0.0
        self.times: list[float] = []
        self.missed = 0

    def _switch(self, sig: signal.Signals) -> float:
        os.killpg(self.bench.procs.pid("probe-target"), sig)
        return time.time()

    def step(self, now: float) -> None:
        """Advance the cycle: take the target down, see the alarm fire, bring it up, see it recover."""
        if self.phase == "up" and self.next_down <= now < self.stop:
            self.down_at, self.phase = self._switch(signal.SIGUSR1), "down"
        elif self.phase == "down":
            if alarm_state(self.bench.conn, PROBE_ID) == "firing":
                self.times.append(time.time() - self.down_at)
            elif now - self.down_at > self.deadline:
                self.missed += 1
                log(f"probe: not firing {self.deadline:.0f}s after its target went down")
            else:
                return
            self.since, self.phase = self._switch(signal.SIGUSR2), "recovering"
        elif self.phase == "recovering":
            if alarm_state(self.bench.conn, PROBE_ID) == "ok":
                self.phase = "up"
                self.next_down = now + 1 + random.random()  # a fresh phase against the 1 s tick each time
            elif now - self.since > self.deadline:
                log(f"probe: not ok {self.deadline:.0f}s after its target came back; no more cycles")
                self.phase = "stuck"

    def finish(self) -> dict[str, Any]:
        """Let a cycle under way end, bring the target up; return the times to fire."""
        deadline = time.time() + self.deadline + 1
        while self.phase == "down" and time.time() < deadline:
            self.step(time.time())
            time.sleep(0.02)
        self._switch(signal.SIGUSR2)
        return {"firing_s": percentiles(self.times, 3), "missed": self.missed}


@dataclass
class Usage:
    """CPU seconds of each process tree and Redis's command counters at one moment."""

    wall: float
    cpu: dict[str, float]
    commands: int
    calls: dict[str, int]

    @classmethod
    def take(cls, bench: Bench, pids: dict[str, int]) -> Usage:
        """Read the counters now."""
        cpu = {name: tree_cpu(pid) for name, pid in pids.items()}
        cpu["bench"] = own_cpu()
        stats = bench.conn.info("commandstats")
        calls = {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}
        return cls(time.time(), cpu, int(bench.conn.info("stats")["total_commands_processed"]), calls)

    def since(self, before: Usage, checks: int) -> dict[str, Any]:
        """Return CPU % of one core per tree, worker CPU per check and Redis commands per check."""
        elapsed = max(1e-9, self.wall - before.wall)
        cpu = {name: round((self.cpu[name] - before.cpu[name]) / elapsed * 100, 1) for name in self.cpu}
        per_check = {k: (v - before.calls.get(k, 0)) / max(1, checks) for k, v in self.calls.items()}
        top = sorted(((k, round(v, 2)) for k, v in per_check.items() if v >= 0.05), key=lambda kv: -kv[1])
        return {
            "cpu_pct": cpu,
            "cpu_pct_total": round(sum(cpu.values()), 1),
            "worker_cpu_ms_per_check": round((self.cpu["worker"] - before.cpu["worker"]) * 1000 / max(1, checks), 2),
            "redis_cmds_per_check": round((self.commands - before.commands) / max(1, checks), 1),
            "redis_calls_per_check": dict(top[:12]),
            "seconds": round(elapsed, 1),
        }


class FirstChecks:
    """Remember when each alarm of a set was first checked (check start) and its result applied."""

    def __init__(self, ids: Sequence[str]) -> None:
        self.ids = set(ids)
        self.seen: dict[str, tuple[float, float]] = {}

    def __call__(self, applied: float, kind: str, data: dict[str, Any]) -> None:
        """Take one event from EventReader."""
        aid = data["id"]
        if kind == "alarm.checked" and aid in self.ids and aid not in self.seen:
            self.seen[aid] = (float(data["result"]["at"]), applied)

    def last(self, default: float) -> float:
        """Return when the last result was applied."""
        return max((at for _, at in self.seen.values()), default=default)


def summarize_jobs(collector: JobCollector) -> dict[str, Any]:
    """Return the batch and tick timings the collector saw."""
    batches = collector.batches
    return {
        "batches": {
            "n": len(batches),
            "size_mean": round(sum(b["size"] for b in batches) / max(1, len(batches)), 1),
            **{k: percentiles([b[k] for b in batches]) for k in ("claim_ms", "queue_ms", "run_ms")},
        },
        "check_alarms": {
            "runs": len(collector.ticks),
            "start_ms": percentiles([t["start_ms"] for t in collector.ticks]),
            "run_ms": percentiles([t["run_ms"] for t in collector.ticks]),
        },
    }


def follow(
    bench: Bench, checks: FirstChecks, deadline: float, since: float, step: Callable[[float], None] | None = None
) -> JobCollector:
    """Read events until every alarm was checked or the deadline passes; return the job timings seen."""
    reader, collector = EventReader(bench.conn), JobCollector(bench.conn)
    next_read = next_collect = next_note = 0.0
    while len(checks.seen) < len(checks.ids) and time.time() < deadline:
        now = time.time()
        if step is not None:
            step(now)
        if now >= next_read:
            reader.read(checks)
            next_read = now + 0.25
        if now >= next_collect:
            collector.collect(since)
            next_collect = now + 5
        if now >= next_note:
            log(
                f"{len(checks.seen)} of {len(checks.ids)} checked, {now - since:.0f}s in, load {os.getloadavg()[0]:.2f}"
            )
            next_note = now + 10
        time.sleep(0.02)
    reader.read(checks)
    collector.collect(since)
    return collector


def run_burst(bench: Bench, ids: list[str], deadline_s: float) -> dict[str, Any]:
    """Make every alarm due at once (as after a bulk import); return how fast the backlog is checked."""
    conn, pids = bench.conn, bench.pids()
    checks = FirstChecks(ids)
    before = Usage.take(bench, pids)
    t0 = time.time()
    with conn.pipeline(transaction=False) as pipe:
        for chunk in range(0, len(ids), 1000):
            pipe.zadd(keys.alarms_due(), dict.fromkeys(ids[chunk : chunk + 1000], t0))
        pipe.execute()
    # One take-down after the first claim took the backlog: the probe's next check waits behind it.
    probe = Probe(bench, t0 + 1.5, t0 + 1.6, deadline_s)
    collector = follow(bench, checks, t0 + deadline_s, t0, probe.step)
    after = Usage.take(bench, pids)
    last = checks.last(t0)
    fired = probe.finish()
    wait_until(bench.idle, 60, "the scheduled queue to drain after the burst", every=0.2)
    first = min((start for start, _ in checks.seen.values()), default=t0)
    return {
        "checked": len(checks.seen),
        "drain_s": round(last - t0, 2),
        "checks_per_s": round(len(checks.seen) / max(1e-9, last - t0), 1),
        "checks_per_s_busy": round(len(checks.seen) / max(1e-9, last - first), 1),
        "lag_ms": percentiles([(start - t0) * 1000 for start, _ in checks.seen.values()]),
        "probe": fired,
        **summarize_jobs(collector),
        **after.since(before, len(checks.seen)),
    }


def run_window(bench: Bench, ids: list[str], drain: float) -> dict[str, Any]:
    """Spread the alarms' due times over one interval and follow one round of checks, cycling the probe."""
    conn, pids, n = bench.conn, bench.pids(), len(ids)
    arm_probe(bench)
    t0 = time.time() + LEAD
    due = spread_due(conn, ids, t0, INTERVAL)
    checks = FirstChecks(ids)
    before = Usage.take(bench, pids)
    requests0 = target_requests(bench.target_port) or 0
    log(f"{n} alarms due from {LEAD:.0f}s ahead over {INTERVAL}s; load average {os.getloadavg()[0]:.2f}")
    probe = Probe(bench, t0 + 5, t0 + INTERVAL - 5)
    collector = follow(bench, checks, t0 + INTERVAL + drain, t0 - 1, probe.step)
    after = Usage.take(bench, pids)
    requests1 = target_requests(bench.target_port) or 0
    memory = {name: tree_memory(pid) for name, pid in pids.items()}
    redis_used = round(int(conn.info("memory")["used_memory"]) / 2**20, 1)
    unschedule(conn, ids)
    fired = probe.finish()
    unschedule(conn, [PROBE_ID])
    with conn.pipeline(transaction=False) as pipe:
        for aid in ids:
            pipe.llen(keys.alarm_results(aid))
        stored = sum(1 for length in pipe.execute() if length)
    wait_until(bench.idle, 60, f"the scheduled queue to drain after {n} alarms", every=0.2)
    failed = FailedJobRegistry(keys.SCHEDULED_QUEUE, connection=conn, serializer=jobs.SERIALIZER).count
    seen = checks.seen
    last = checks.last(t0)
    in_window = sum(1 for _, at in seen.values() if at < t0 + INTERVAL)
    return {
        "checked": len(seen),
        "checked_in_window": in_window,
        "alarms_with_results": stored,
        "target_requests": requests1 - requests0,
        "lag_ms": percentiles([(start - due[aid]) * 1000 for aid, (start, _) in seen.items()]),
        "record_lag_ms": percentiles([(at - due[aid]) * 1000 for aid, (_, at) in seen.items()]),
        "checks_per_s_window": round(in_window / INTERVAL, 1),
        "checks_per_s_run": round(len(seen) / max(1e-9, last - t0), 1),
        **summarize_jobs(collector),
        "failed_jobs": failed,
        **after.since(before, len(seen)),
        "rss_mb": {k: v["rss_mb"] for k, v in memory.items()},
        "pss_mb": {k: v["pss_mb"] for k, v in memory.items()},
        "procs": {k: v["n"] for k, v in memory.items()},
        "redis_used_memory_mb": redis_used,
        "probe": fired,
        "loadavg_end": [round(x, 2) for x in os.getloadavg()],
    }


def run_size(bench: Bench, ids: list[str], drain: float, burst: bool) -> dict[str, Any]:
    """Measure one size: a burst of all alarms due at once (optional), then one evenly spread interval."""
    log(f"{len(ids)} alarms; load average {os.getloadavg()[0]:.2f}")
    arm_probe(bench)
    found: dict[str, Any] = {"alarms": len(ids)}
    if burst:
        found["burst"] = run_burst(bench, ids, BURST_DEADLINE)
        log(f"burst of {len(ids)}: {found['burst']['checks_per_s']} checks/s, lag {found['burst']['lag_ms']}")
    found.update(run_window(bench, ids, drain))
    return found


# -- the whole run ------------------------------------------------------------------


def goals(sizes: dict[str, dict[str, Any]], biggest: str) -> dict[str, bool | None]:
    """Judge the issue's goals on the biggest size's evenly spread interval."""
    big = sizes.get(biggest)
    if big is None:
        return {}
    p99 = big["lag_ms"]["p99"]
    firing = big["probe"]["firing_s"]["max"]
    return {
        f"all_{big['alarms']}_checked_within_one_interval": big["checked"] == big["alarms"]
        and big["record_lag_ms"]["max"] < INTERVAL * 1000,
        "p99_lag<=2s": None if p99 is None else p99 <= 2000,
        "probe_firing_max<=interval+1s": None
        if firing is None
        else firing <= PROBE_INTERVAL + 1 and not big["probe"]["missed"],
    }


def versions(conn: Redis) -> dict[str, Any]:
    """Return the versions of what the measurement ran on."""
    found: dict[str, Any] = {n: importlib.metadata.version(n) for n in ("alarmq", "rq", "redis", "httpx")}
    found["python"] = platform.python_version()
    found["redis_server"] = conn.info("server").get("redis_version")
    return found


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start everything, measure each size, stop everything; return the report."""
    started = time.monotonic()
    load_start = [round(x, 2) for x in os.getloadavg()]
    registry.load(())
    workdir = Path(tempfile.mkdtemp(prefix="alarmq-bench-alarms-"))
    log(f"work dir (process logs) {workdir}; load average {load_start}")
    ok = False
    sizes: dict[str, dict[str, Any]] = {}
    try:
        with Processes(workdir) as procs:
            redis_url = start_redis(procs, free_port(args.redis_port), workdir)
            target_port = free_port(8480)
            bench = Bench(procs, workdir, f"{redis_url}/0", target_port, free_port(target_port + 1))
            vers = versions(bench.conn)
            bench.start_target("target", target_port)
            bench.start_target("probe-target", bench.probe_port)
            url = f"http://127.0.0.1:{target_port}/health"
            groups = {n: [f"a{n}-{i:05d}" for i in range(n)] for n in args.sizes}
            made = time.monotonic()
            for ids in groups.values():
                create_alarms(bench.conn, ids, url)
            probe_spec = {"id": PROBE_ID, "kind": "http", "interval": PROBE_INTERVAL,
                          "config": {"url": f"http://127.0.0.1:{bench.probe_port}/", "timeout": 1}}  # fmt: skip
            monitors.create(bench.conn, probe_spec, time.time())
            unschedule(bench.conn, [i for ids in groups.values() for i in ids] + [PROBE_ID])
            log(f"created {sum(map(len, groups.values()))} alarms in {time.monotonic() - made:.1f}s")
            bench.start_alarmq("scheduler", ["scheduler"])
            bench.start_alarmq("worker", ["worker", "--concurrency", str(CONCURRENCY)])
            wait_until(bench.ready, READY_DEADLINE, "scheduler leading and both worker processes alive")
            time.sleep(args.warmup)
            for n, ids in groups.items():
                burst = not args.no_burst
                left = BUDGET - (time.monotonic() - started) - LEAD - INTERVAL - 20 - (30 if burst else 0)
                sizes[f"n{n}"] = run_size(bench, ids, max(5.0, min(args.drain, left)), burst)
                log(f"{n}: lag {json.dumps(sizes[f'n{n}']['lag_ms'])}, probe {sizes[f'n{n}']['probe']}")
        ok = True
    finally:
        if ok and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            log(f"logs kept in {workdir}")
    return {
        **sizes,
        "goals": goals(sizes, f"n{max(args.sizes)}"),
        "params": {
            "sizes": args.sizes,
            "interval_s": INTERVAL,
            "workers": CONCURRENCY,
            "probe_interval_s": PROBE_INTERVAL,
            "batch": engine.BATCH,
            "threads_per_batch": engine.MAX_THREADS,
            "target": "asyncio HTTP/1.1 keep-alive, 1 process",
            "cores": os.cpu_count(),
            "loadavg_start": load_start,
            "loadavg_end": [round(x, 2) for x in os.getloadavg()],
            "elapsed_s": round(time.monotonic() - started, 1),
        },
        "versions": vers,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="alarm counts, one run each")
    parser.add_argument("--drain", type=float, default=40.0, help="seconds past the window to wait for checks")
    parser.add_argument("--warmup", type=float, default=3.0, help="idle seconds after the stack is up")
    parser.add_argument("--redis-port", type=int, default=6441, help="first port to try for the private Redis")
    parser.add_argument("--no-burst", action="store_true", help="skip the all-due-at-once run before each interval")
    parser.add_argument("--quick", action="store_true", help="200 and 1,000 alarms, for checking the harness")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs) after a successful run")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # internal: be the HTTP target on this port
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes = [200, 1000]
    return args


def main(argv: list[str] | None = None, out: Callable[[str], Any] = print) -> int:
    """Run the benchmark and print its one JSON line (or serve the target with --serve)."""
    args = parse_args(argv)
    if args.serve:
        serve_target(args.serve)
        return 0
    signal.signal(signal.SIGTERM, raise_on_sigterm)
    out(json.dumps(run(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
