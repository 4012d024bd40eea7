"""Measure the /ws event relay: latency at 1, 50 and 200 clients, sustained events/s and memory per client.

Run with alarmq's venv: `.venv/bin/python bench/events.py [--quick] [--py-spy PATH]`. It starts its own
redis-server on a free port from 6431 (never :6379) and `python -m alarmq web` as a real process, first under
gunicorn (gthread, ALARMQ_WEB_THREADS=260), then under waitress with /ws on its side listener. Progress goes to
stderr; stdout gets exactly one JSON line. Every wait has a deadline, a watchdog ends the whole run after
--deadline seconds, and every process it starts is stopped with its whole tree, also on errors.

The same file plays three roles, one process each:
- the driver (default) starts everything, publishes the warm-up and end markers and prints the result;
- `--role publish` is the worker side: it calls `alarmq.events.publish(conn, "bench.tick", {run, seq, sent})`
  (or enqueues echo jobs, or does a bare PUBLISH), paced at --interval, stamping `sent` with CLOCK_MONOTONIC;
- `--role receive` holds --sockets WebSockets (one selector loop, no thread per socket) or one bare redis-py
  subscriber, stamps every frame with CLOCK_MONOTONIC as it is read and checks every seq arrived exactly once.

Keys: latencies are publish-call → frame-read in ms (p50/p99 pooled over --repeats runs of --events events at
--interval, plus each run's p99); lost/dup count per connection against the seqs the run published, resync the
`{"type": "resync"}` frames. floor_redis_pubsub_ms is a bare PUBLISH to a redis-py subscriber process;
floor_events_publish_ms is the same subscriber behind `alarmq.events.publish` (XADD + PUBLISH in Lua), the floor of
the relay path. *_cpu_us_per_delivery is the CPU (user + system) the web tree and the receivers used over a client
count's runs, per frame delivered. sustained_events_per_s: a burst of 80% of the relay's per-client queue
(ALARMQ_WS_QUEUE; so nothing has to drop) published flat out to 50 clients, delivered_per_s = frames received by all
clients / (last read - first publish); then paced runs at 80, 60, 40, 20% of that per-client rate until one holds
(no loss, p99 <= 50 ms): sustained_events_per_s_per_client is that rate.
web_*_mb sum /proc/PID/smaps_rollup over the web process tree: "fresh" right after start, "idle" after the 1-client
phase left (imports and the relay thread warm), "200_clients" with 200 sockets open, before and after their runs;
kb_per_client = (PSS at 200 - PSS idle) / 200; web_idle_cpu_pct_with_200_clients is the web tree's CPU while 200
sockets are open and nothing is published. job_finished_1_client runs real echo jobs on `alarmq worker` (simple) and
times the worker's `job.finished` publish (its envelope `ts`, wall clock) and the enqueue to the client's read.
--py-spy PATH adds one 200-client run under `py-spy record --gil` (py-spy is not a project requirement: put it on PATH
or name it in BENCH_PY_SPY) and summarises where the web worker held the GIL; that run is not in the other keys.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import queue
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

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

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-events-token-0123456789abcdef"
WEB_THREADS = 260  # every WebSocket holds a gthread thread: 200 clients + headroom
RECEIVERS = 4  # processes the sockets are spread over
CLIENT_COUNTS = (1, 50, 200)
SUSTAINED_CLIENTS = 50
GOAL_P99_MS = 10.0
GOAL_KB_PER_CLIENT = 1024
READY_DEADLINE = 60.0
RESULT_DEADLINE = 30.0
MARKER_EVERY = 0.05
END_EVERY = 0.25
SETTLE = 2.0
SUSTAIN_SHARES = (0.8, 0.6, 0.4, 0.2)  # of the burst's per-client delivery rate, tried in turn
SUSTAIN_SECONDS = 3.0
SUSTAIN_P99_MS = 50.0  # a paced rate "holds" when nothing is lost and p99 stays under this
LINE = "@@ "


def now_ns() -> int:
    """Return CLOCK_MONOTONIC in ns, the clock every process of this bench shares."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def emit(kind: str, payload: dict[str, Any]) -> None:
    """Print one machine-readable line for the driver."""
    sys.stdout.write(f"{LINE}{kind} {json.dumps(payload, separators=(',', ':'))}\n")
    sys.stdout.flush()


# -- receiving side ---------------------------------------------------------------------------------------------


STOP = threading.Event()


def stop_on_signal(signum: int, frame: FrameType | None) -> None:
    """Ask the receive loop to close its connections and exit."""
    STOP.set()


@dataclass
class Tally:
    """What one connection has received: per run the seqs, and the markers it has seen."""

    warm: bool = False
    seqs: dict[str, list[int]] = field(default_factory=dict)
    ended: dict[str, int] = field(default_factory=dict)


class Receiver:
    """Every connection's tally in one receiving process, and the results of the runs they all finished."""

    def __init__(self, connections: int) -> None:
        self.tallies = [Tally() for _ in range(connections)]
        self.lat_us: dict[str, list[int]] = {}
        self.e2e_us: dict[str, list[int]] = {}
        self.first_sent: dict[str, int] = {}
        self.last_read: dict[str, int] = {}
        self.resync = 0
        self.reported: set[str] = set()
        self.ready = False
        self.dirty = True

    def take(self, index: int, t_mono: int, t_wall: int, payload: bytes | str) -> None:
        """Record one frame that connection `index` read at `t_mono` (and `t_wall`)."""
        event = json.loads(payload)
        kind = event.get("type")
        tally = self.tallies[index]
        if kind == "bench.tick":
            data = event["data"]
            sent = data["sent"]
            self.record(tally, data["run"], data["seq"], (t_mono - sent) // 1000, (t_mono - sent) // 1000, sent, t_mono)
        elif kind == "job.finished":
            run, seq, sent = str(event["data"]["result"]).split(":")
            published = round(event["ts"] * 1e9)
            lat = (t_wall - published) // 1000
            self.record(tally, run, int(seq), lat, (t_mono - int(sent)) // 1000, int(sent), t_mono)
        elif kind == "bench.warm":
            self.dirty = self.dirty or not tally.warm
            tally.warm = True
        elif kind == "bench.end":
            tally.ended.setdefault(event["data"]["run"], event["data"]["count"])
            self.dirty = True
        elif kind == "resync":
            self.resync += 1

    def record(self, tally: Tally, run: str, seq: int, lat_us: int, e2e_us: int, sent: int, read: int) -> None:
        """Add one delivery of `seq` in `run` to a connection's tally and the run's latencies."""
        tally.seqs.setdefault(run, []).append(seq)
        self.lat_us.setdefault(run, []).append(lat_us)
        self.e2e_us.setdefault(run, []).append(e2e_us)
        self.first_sent[run] = min(self.first_sent.get(run, sent), sent)
        self.last_read[run] = max(self.last_read.get(run, read), read)

    def report(self) -> None:
        """Print `ready` once every connection is warm, and a run's result once every connection saw its end."""
        if not self.dirty:
            return
        self.dirty = False
        if not self.ready and all(t.warm for t in self.tallies):
            self.ready = True
            emit("ready", {"connections": len(self.tallies)})
        for run, count in list(self.tallies[0].ended.items()):
            if run not in self.reported and all(run in t.ended for t in self.tallies):
                self.reported.add(run)
                emit("result", self.result(run, count))

    def result(self, run: str, count: int) -> dict[str, Any]:
        """Return a finished run's deliveries, losses, duplicates and latencies (and forget them)."""
        lost = dup = received = 0
        expected = range(count)
        for tally in self.tallies:
            seqs = tally.seqs.pop(run, [])
            unique = set(seqs)
            received += len(seqs)
            dup += len(seqs) - len(unique)
            lost += sum(1 for seq in expected if seq not in unique)
        resync, self.resync = self.resync, 0
        return {
            "run": run,
            "connections": len(self.tallies),
            "count": count,
            "received": received,
            "lost": lost,
            "dup": dup,
            "resync": resync,
            "first_sent_ns": self.first_sent.pop(run, None),
            "last_read_ns": self.last_read.pop(run, None),
            "lat_us": self.lat_us.pop(run, []),
            "e2e_us": self.e2e_us.pop(run, []),
        }


def receive_ws(url: str, sockets: int, lifetime: float) -> None:
    """Hold `sockets` WebSockets to `url` in one selector loop and report what they read."""
    import websocket

    started = time.monotonic()
    conns = []
    for _ in range(sockets):
        conns.append(
            websocket.create_connection(
                url, header=[f"Authorization: Bearer {TOKEN}"], timeout=10, skip_utf8_validation=True
            )
        )
    emit("connected", {"sockets": sockets, "seconds": round(time.monotonic() - started, 3)})
    selector = selectors.DefaultSelector()
    for index, ws in enumerate(conns):
        selector.register(ws.sock, selectors.EVENT_READ, index)
    receiver = Receiver(sockets)
    text = websocket.ABNF.OPCODE_TEXT
    close = websocket.ABNF.OPCODE_CLOSE
    try:
        while not STOP.is_set() and time.monotonic() - started < lifetime:
            batch = []
            # Read every ready socket first and parse afterwards, so parsing never delays another's stamp.
            for key, _ in selector.select(0.2):
                opcode, frame = conns[key.data].recv_data_frame(control_frame=True)
                stamp = now_ns()
                if opcode == text:
                    batch.append((key.data, stamp, time.time_ns(), frame.data))
                elif opcode == close:
                    raise RuntimeError(f"the server closed socket {key.data}: {frame.data!r}")
            for item in batch:
                receiver.take(*item)
            receiver.report()
    finally:
        for ws in conns:
            try:
                ws.close(timeout=1)
            except Exception:  # closing is best effort
                ws.abort()


def receive_redis(redis_url: str, lifetime: float) -> None:
    """Subscribe to the events channel with bare redis-py, the way the relay does, and report what arrives."""
    import redis

    from alarmq import keys

    started = time.monotonic()
    pubsub = redis.Redis.from_url(redis_url).pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(keys.events_channel())
    emit("connected", {"sockets": 1, "seconds": round(time.monotonic() - started, 3)})
    receiver = Receiver(1)
    while not STOP.is_set() and time.monotonic() - started < lifetime:
        message = pubsub.get_message(timeout=0.2)
        if message is not None:
            receiver.take(0, now_ns(), time.time_ns(), message["data"])
            receiver.report()
    pubsub.close()


# -- publishing side (the worker) -------------------------------------------------------------------------------


def publish_role(redis_url: str, workdir: Path, mode: str, run: str, count: int, interval: float) -> None:
    """Publish `count` ticks (or enqueue echo jobs) paced at `interval` seconds, as a worker process would."""
    from alarmq import connection, events, jobs, keys
    from alarmq.settings import Settings

    settings = Settings(redis_url=redis_url, api_token=TOKEN, data_dir=workdir / "data")
    conn = connection.connect(settings)
    conn.ping()
    channel = keys.events_channel()
    step = round(interval * 1e9)
    failed = 0
    started = now_ns()
    for seq in range(count):
        if step:
            delay = started + seq * step - now_ns()
            if delay > 0:
                time.sleep(delay / 1e9)
        sent = now_ns()
        if mode == "tick":
            failed += events.publish(conn, "bench.tick", {"run": run, "seq": seq, "sent": sent}) is None
        elif mode == "raw":
            data = {"run": run, "seq": seq, "sent": sent}
            conn.publish(channel, json.dumps({"id": f"0-{seq}", "type": "bench.tick", "ts": time.time(), "data": data}))
        else:
            jobs.enqueue(conn, settings, "echo", {"message": f"{run}:{seq}:{sent}"}, source="bench")
    finished = now_ns()
    emit("published", {"count": count, "failed": failed, "start_ns": started, "end_ns": finished})


# -- driver -----------------------------------------------------------------------------------------------------


def percentiles(values_us: Iterable[int]) -> dict[str, Any]:
    """Return n, p50, p90, p99 and max in ms (nearest rank) of latencies in µs."""
    ordered = sorted(values_us)
    if not ordered:
        return {"n": 0}

    def rank(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))] / 1000, 2)

    return {"n": len(ordered), "p50": rank(0.50), "p90": rank(0.90), "p99": rank(0.99), "max": rank(1.0)}


def thread_count(root: int) -> int:
    """Return how many threads the process tree of `root` runs."""
    total = 0
    for pid in tree_pids(root):
        try:
            with open(f"/proc/{pid}/status") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("Threads:"))
        except (OSError, StopIteration):
            pass
    return total


class Lines:
    """Collect the `@@ kind {json}` lines that child processes print, from one reader thread per child."""

    def __init__(self) -> None:
        self.inbox: queue.Queue[tuple[str, str, dict[str, Any]]] = queue.Queue()
        self.exited: set[str] = set()

    def watch(self, name: str, proc: subprocess.Popen[str]) -> None:
        """Read `proc`'s output in the background; other lines go to the progress log."""

        def read() -> None:
            assert proc.stdout is not None
            with proc.stdout:
                for line in proc.stdout:
                    if line.startswith(LINE):
                        kind, _, payload = line[len(LINE) :].partition(" ")
                        self.inbox.put((name, kind, json.loads(payload)))
                    elif line.strip():
                        log(f"{name}: {line.rstrip()}")
            self.inbox.put((name, "exit", {}))

        threading.Thread(target=read, name=f"lines-{name}", daemon=True).start()

    def expect(
        self,
        names: Iterable[str],
        kind: str,
        deadline_s: float,
        poke: Callable[[], None] | None = None,
        every: float = MARKER_EVERY,
        run: str | None = None,
    ) -> dict[str, dict[str, Any]]:
        """Wait until each of `names` printed `kind` (for `run`), calling `poke` every `every` seconds meanwhile."""
        waiting = set(names)
        got: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + deadline_s
        while waiting:
            if dead := waiting & self.exited:
                raise RuntimeError(f"{sorted(dead)} exited while the bench waited for their {kind!r}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{kind}: {sorted(waiting)} silent after {deadline_s:.0f}s")
            if poke is not None:
                poke()
            until = time.monotonic() + every
            while waiting and (left := until - time.monotonic()) > 0:
                try:
                    name, got_kind, payload = self.inbox.get(timeout=left)
                except queue.Empty:
                    break
                if got_kind == "exit":
                    self.exited.add(name)
                if got_kind == kind and name in waiting and (run is None or payload.get("run") == run):
                    got[name] = payload
                    waiting.discard(name)
        return got


class Bench:
    """The private Redis, the web process, the receivers and the publisher of one benchmark run."""

    def __init__(self, procs: Processes, workdir: Path, redis_url: str, args: argparse.Namespace) -> None:
        from alarmq import connection
        from alarmq.settings import Settings

        self.procs = procs
        self.workdir = workdir
        self.redis_url = redis_url
        self.args = args
        self.conn = connection.connect(Settings(redis_url=redis_url, api_token=TOKEN, data_dir=workdir / "data"))
        self.lines = Lines()
        self.runs = 0
        self.web_port = 0
        self.ws_url = ""
        self.env = alarmq_env(redis_url, TOKEN, workdir / "data", ALARMQ_EMBEDDED_REDIS="0",
                              ALARMQ_WEB_THREADS=str(WEB_THREADS), HOST="127.0.0.1", PYTHONUNBUFFERED="1")  # fmt: skip

    def me(self, role: str, *args: str) -> list[str]:
        """Return the command line that runs this file in `role`."""
        return [sys.executable, str(Path(__file__).resolve()), "--role", role, "--redis-url", self.redis_url, *args]

    def publish_marker(self, type_: str, data: dict[str, Any]) -> None:
        """Publish one warm-up or end marker through the real publish path."""
        from alarmq import events

        events.publish(self.conn, type_, data)

    # -- the web process ----------------------------------------------------------------------------------------

    def start_web(self, server: str) -> None:
        """Start `python -m alarmq web --server SERVER` and wait until it answers (and its /ws port listens)."""
        self.web_port = free_port(18431)
        # gunicorn 27 puts its control socket in $XDG_RUNTIME_DIR, else in one ~/.gunicorn/gunicorn.ctl shared by
        # every gunicorn of the user: give this one its own, so no other instance's control traffic reaches it.
        env = {**self.env, "PORT": str(self.web_port), "XDG_RUNTIME_DIR": str(self.workdir)}
        ws_port = self.web_port
        if server == "waitress":
            ws_port = free_port(self.web_port + 1)
            env["ALARMQ_WS_PORT"] = str(ws_port)
        self.procs.start("web", [sys.executable, "-m", "alarmq", "web", "--server", server], env, self.workdir)
        self.ws_url = f"ws://127.0.0.1:{ws_port}/ws"

        def ready() -> bool:
            self.procs.pid("web")
            try:
                client = http.client.HTTPConnection("127.0.0.1", self.web_port, timeout=2)
                client.request("GET", "/api/v1/health")
                if client.getresponse().status not in (200, 503):
                    return False
                with socket.create_connection(("127.0.0.1", ws_port), timeout=2):
                    return True
            except OSError:
                return False

        waited = wait_until(ready, READY_DEADLINE, f"alarmq web ({server})", every=0.1)
        log(f"web ({server}) ready in {waited:.1f}s on :{self.web_port}, /ws on :{ws_port}")

    def web_memory(self) -> dict[str, float]:
        """Return the web process tree's RSS and PSS (MB), process and thread counts."""
        root = self.procs.pid("web")
        return {**tree_memory(root), "threads": thread_count(root)}

    def web_worker_pid(self) -> int:
        """Return the pid of the process that serves requests (gunicorn's worker, or waitress itself)."""
        pids = tree_pids(self.procs.pid("web"))
        return pids[1] if len(pids) > 1 else pids[0]

    # -- receivers and runs -------------------------------------------------------------------------------------

    def connect(self, label: str, clients: int, transport: str = "ws") -> list[str]:
        """Start receivers holding `clients` connections in all and wait until every one has seen a warm-up event."""
        spread = 1 if clients < RECEIVERS else RECEIVERS
        names = []
        for i in range(spread):
            sockets = clients // spread + (1 if i < clients % spread else 0)
            name = f"{label}-rx{i}"
            extra = ["--transport", transport, "--url", self.ws_url, "--sockets", str(sockets)]
            proc = self.procs.start(name, self.me("receive", *extra), self.env, self.workdir, capture=True)
            self.lines.watch(name, proc)
            names.append(name)
        connected = self.lines.expect(names, "connected", READY_DEADLINE, every=0.2)
        slowest = max(p["seconds"] for p in connected.values())
        self.lines.expect(names, "ready", READY_DEADLINE, poke=lambda: self.publish_marker("bench.warm", {}))
        log(f"{label}: {clients} connection(s) over {spread} receiver(s), connected in {slowest:.2f}s, warm")
        return names

    def disconnect(self, names: list[str]) -> None:
        """Stop receivers (they close their sockets with a close frame)."""
        for name in names:
            self.procs.stop(name, grace=10)

    def run(self, names: list[str], mode: str, count: int, interval: float, job_deadline: float = 0) -> dict[str, Any]:
        """Publish one run from a publisher process, mark its end, and return the receivers' pooled result."""
        self.runs += 1
        run = f"r{self.runs}"
        extra = ["--workdir", str(self.workdir), "--mode", mode, "--run", run]
        extra += ["--count", str(count), "--interval", str(interval)]
        finished_before = self.finished_jobs()
        name = f"publisher-{run}"  # one name per run: a late line from an earlier publisher can't be mistaken
        proc = self.procs.start(name, self.me("publish", *extra), self.env, self.workdir, capture=True)
        self.lines.watch(name, proc)
        published = self.lines.expect([name], "published", count * interval + RESULT_DEADLINE, every=0.5)
        self.procs.stop(name, grace=5)
        pub = published[name]
        if pub["failed"]:
            raise RuntimeError(f"{pub['failed']} publish call(s) failed")
        if mode == "job":
            wait_until(lambda: self.finished_jobs() - finished_before >= count, job_deadline, "echo jobs finished")

        def end() -> None:
            self.publish_marker("bench.end", {"run": run, "count": count})

        results = self.lines.expect(names, "result", RESULT_DEADLINE, poke=end, every=END_EVERY, run=run)
        parts = list(results.values())
        received = sum(p["received"] for p in parts)
        first = min((p["first_sent_ns"] for p in parts if p["first_sent_ns"]), default=pub["start_ns"])
        last = max((p["last_read_ns"] for p in parts if p["last_read_ns"]), default=pub["end_ns"])
        return {
            "count": count,
            "connections": sum(p["connections"] for p in parts),
            "received": received,
            "lost": sum(p["lost"] for p in parts),
            "dup": sum(p["dup"] for p in parts),
            "resync": sum(p["resync"] for p in parts),
            "published_per_s": round(count / max((pub["end_ns"] - pub["start_ns"]) / 1e9, 1e-9)),
            "delivered_per_s": round(received / max((last - first) / 1e9, 1e-9)),
            "lat_us": [v for p in parts for v in p["lat_us"]],
            "e2e_us": [v for p in parts for v in p["e2e_us"]],
        }

    @staticmethod
    def cpu_seconds(roots: Iterable[int]) -> float:
        """Return the user + system CPU seconds the process trees of `roots` have used so far."""
        total = 0
        for root in roots:
            for pid in tree_pids(root):
                try:
                    with open(f"/proc/{pid}/stat") as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                    total += int(fields[11]) + int(fields[12])
                except (OSError, IndexError, ValueError):
                    pass
        return total / os.sysconf("SC_CLK_TCK")

    def finished_jobs(self) -> int:
        """Return how many jobs of the default queue have finished."""
        from rq.registry import FinishedJobRegistry

        return FinishedJobRegistry("default", connection=self.conn).count

    def latency(self, names: list[str], label: str, mode: str = "tick") -> dict[str, Any]:
        """Run --repeats paced runs and return pooled p50/p99, each run's p99, losses and duplicates."""
        web = self.procs.pid("web") if "web" in self.procs.procs else None
        web_cpu, rx_cpu = self.cpu_seconds([web] if web else []), self.cpu_seconds(self.procs.pid(n) for n in names)
        runs = [self.run(names, mode, self.args.events, self.args.interval) for _ in range(self.args.repeats)]
        web_cpu = self.cpu_seconds([web] if web else []) - web_cpu
        rx_cpu = self.cpu_seconds(self.procs.pid(n) for n in names) - rx_cpu
        pooled = percentiles(v for r in runs for v in r["lat_us"])
        delivered = max(1, sum(r["received"] for r in runs))
        out = {
            **{k: pooled[k] for k in ("p50", "p90", "p99", "max", "n")},
            "p99_by_run": [percentiles(r["lat_us"])["p99"] for r in runs],
            "lost": sum(r["lost"] for r in runs),
            "dup": sum(r["dup"] for r in runs),
            "resync": sum(r["resync"] for r in runs),
            "receiver_cpu_us_per_delivery": round(rx_cpu * 1e6 / delivered, 1),
        }
        if web:
            out["web_cpu_us_per_delivery"] = round(web_cpu * 1e6 / delivered, 1)
        log(f"{label}: p50 {out['p50']} ms, p99 {out['p99']} ms {out['p99_by_run']}, lost {out['lost']}, "
            f"dup {out['dup']}, CPU µs/delivery web {out.get('web_cpu_us_per_delivery')} "
            f"receivers {out['receiver_cpu_us_per_delivery']}")  # fmt: skip
        return out


def measure_floor(bench: Bench) -> dict[str, Any]:
    """Measure a bare redis-py subscriber process: plain PUBLISH, then alarmq.events.publish."""
    names = bench.connect("floor", 1, transport="redis")
    try:
        raw = bench.latency(names, "floor: bare PUBLISH → redis-py", mode="raw")
        lua = bench.latency(names, "floor: events.publish → redis-py", mode="tick")
    finally:
        bench.disconnect(names)
    return {"floor_redis_pubsub_ms": raw, "floor_events_publish_ms": lua}


def measure_job_path(bench: Bench, names: list[str]) -> dict[str, Any]:
    """Run echo jobs on a real `alarmq worker` and time its job.finished events to one client."""
    from alarmq import keys

    cmd = [sys.executable, "-m", "alarmq", "worker", "--class", "simple"]
    bench.procs.start("worker", cmd, bench.env, bench.workdir)
    try:
        wait_until(lambda: bool(bench.conn.keys(keys.worker_alive("*"))), READY_DEADLINE, "alarmq worker alive")
        count = max(20, bench.args.events // 2)
        result = bench.run(names, "job", count, bench.args.interval, job_deadline=RESULT_DEADLINE)
    finally:
        bench.procs.stop("worker", grace=15)
    out = {
        "publish_to_receive_ms": percentiles(result["lat_us"]),
        "enqueue_to_receive_ms": percentiles(result["e2e_us"]),
        "lost": result["lost"],
        "dup": result["dup"],
    }
    log(f"job.finished → 1 client: {out['publish_to_receive_ms']}, enqueue → client {out['enqueue_to_receive_ms']}")
    return out


def client_queue(env: dict[str, str]) -> int:
    """Return how many events the relay queues per client under `env` (ALARMQ_WS_QUEUE, where there is one)."""
    from alarmq.settings import Settings
    from alarmq.web import relay

    return int(getattr(Settings.from_env(env), "ws_queue", relay.CLIENT_QUEUE))


def measure_sustained(bench: Bench, names: list[str]) -> dict[str, Any]:
    """Burst events flat out to the connected clients, then pace at falling shares of that rate until one holds."""
    queue_size = client_queue(bench.env)
    size = bench.args.burst or int(queue_size * 0.8)  # below the per-client queue, so nothing has to drop
    burst = bench.run(names, "tick", size, 0)
    clients = burst["connections"]
    per_client = burst["delivered_per_s"] / clients
    paced: list[dict[str, Any]] = []
    for share in SUSTAIN_SHARES:
        rate = max(10.0, share * per_client)
        run = bench.run(names, "tick", max(50, round(rate * SUSTAIN_SECONDS)), 1 / rate)
        lat = percentiles(run["lat_us"])
        paced.append(
            {
                "share": share,
                "events_per_s": round(rate),
                "delivered_per_s": run["delivered_per_s"],
                "p50": lat["p50"],
                "p99": lat["p99"],
                "max": lat["max"],
                "lost": run["lost"],
                "dup": run["dup"],
                "resync": run["resync"],
            }
        )
        log(f"sustained: paced at {share:.0%} of the burst rate: {paced[-1]}")
        if run["lost"] == 0 and run["dup"] == 0 and lat["p99"] <= SUSTAIN_P99_MS:
            break
    held = [p for p in paced if p["lost"] == 0 and p["dup"] == 0 and p["p99"] <= SUSTAIN_P99_MS]
    out = {
        "clients": clients,
        "burst_events": size,
        "client_queue": queue_size,
        "published_per_s": burst["published_per_s"],
        "delivered_per_s": burst["delivered_per_s"],
        "events_per_s_per_client": round(per_client),
        "burst_lat_ms": percentiles(burst["lat_us"]),
        "lost": burst["lost"],
        "dup": burst["dup"],
        "resync": burst["resync"],
        "sustained_events_per_s_per_client": held[0]["events_per_s"] if held else None,
        "sustained_delivered_per_s": held[0]["delivered_per_s"] if held else None,
        "paced": paced,
    }
    held_rate = out["sustained_events_per_s_per_client"]
    log(f"sustained: burst {out['delivered_per_s']} deliveries/s to {clients} clients "
        f"({out['events_per_s_per_client']} events/s each); held when paced: {held_rate}/s each")  # fmt: skip
    return out


def profile_run(bench: Bench, names: list[str], path: Path) -> dict[str, Any]:
    """Record where the web worker holds the GIL (py-spy --gil, non-blocking) during one extra paced run."""
    py_spy = os.environ.get("BENCH_PY_SPY") or shutil.which("py-spy") or "py-spy"
    seconds = bench.args.events * bench.args.interval + 2
    cmd = [py_spy, "record", "--pid", str(bench.web_worker_pid()), "--rate", "1000", "--nonblocking", "--gil",
           "--duration", str(round(seconds)), "--format", "raw", "--output", str(path)]  # fmt: skip
    bench.procs.start("py-spy", cmd, bench.env, bench.workdir)
    time.sleep(1.0)
    result = bench.run(names, "tick", bench.args.events, bench.args.interval)
    wait_until(lambda: bench.procs.procs["py-spy"].poll() is not None, seconds + 30, "py-spy record")
    bench.procs.stop("py-spy")
    return {"p99_ms_while_profiled": percentiles(result["lat_us"]).get("p99"), "top": top_frames(path)}


def top_frames(path: Path, limit: int = 10) -> dict[str, Any]:
    """Return the share of GIL-holding samples per leaf line and per notable function anywhere on the stack."""
    probes = {
        "json.dumps": "dumps (json/__init__.py",
        "ws.send (wsproto + socket send)": "send (simple_websocket/ws.py",
        "wsproto framing": "(wsproto/",
        "queue.get (handler wake-up)": "get (queue.py",
        "queue.put + notify (fan-out)": "put (queue.py",
        "_fan_out": "_fan_out (alarmq/web/relay.py",
        "types filter": "matches (alarmq/events.py",
        "redis read": "(redis/",
    }
    leaves: dict[str, int] = {}
    inclusive = dict.fromkeys(probes, 0)
    total = 0
    try:
        text = path.read_text()
    except OSError:
        return {"error": f"no profile at {path}"}
    for line in text.splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        samples = int(n)
        total += samples
        leaf = stack.rsplit(";", 1)[-1]
        leaves[leaf] = leaves.get(leaf, 0) + samples
        for key, probe in probes.items():
            if probe in stack:
                inclusive[key] += samples
    top = sorted(leaves.items(), key=lambda kv: -kv[1])[:limit]
    return {
        "samples": total,
        "leaf_pct": {k: round(100 * v / max(total, 1), 1) for k, v in top},
        "inclusive_pct": {k: round(100 * v / max(total, 1), 1) for k, v in inclusive.items()},
    }


def gunicorn_phase(bench: Bench, result: dict[str, Any]) -> None:
    """Measure the relay under gunicorn at each client count, the job path, sustained rate and memory."""
    bench.start_web("gunicorn")
    time.sleep(SETTLE)
    rss: dict[str, Any] = {}
    pss: dict[str, Any] = {}
    fresh = bench.web_memory()
    rss["fresh"], pss["fresh"] = fresh["rss_mb"], fresh["pss_mb"]
    relay: dict[str, Any] = {}
    threads: dict[str, int] = {"fresh": int(fresh["threads"])}
    for clients in CLIENT_COUNTS:
        names = bench.connect(f"gunicorn-{clients}", clients)
        try:
            if clients == max(CLIENT_COUNTS):
                cpu = bench.cpu_seconds([bench.procs.pid("web")])
                time.sleep(SETTLE)
                idle_cpu = bench.cpu_seconds([bench.procs.pid("web")]) - cpu
                result["web_idle_cpu_pct_with_200_clients"] = round(100 * idle_cpu / SETTLE, 1)
                loaded = bench.web_memory()
                rss[f"{clients}_clients"], pss[f"{clients}_clients"] = loaded["rss_mb"], loaded["pss_mb"]
                threads[f"{clients}_clients"] = int(loaded["threads"])
            relay[str(clients)] = bench.latency(names, f"gunicorn, {clients} client(s)")
            if clients == 1 and not bench.args.no_jobs:
                result["job_finished_1_client"] = measure_job_path(bench, names)
            if clients == SUSTAINED_CLIENTS:
                result["sustained_events_per_s"] = measure_sustained(bench, names)
            if clients == max(CLIENT_COUNTS):
                after = bench.web_memory()
                rss[f"{clients}_clients_after_runs"] = after["rss_mb"]
                pss[f"{clients}_clients_after_runs"] = after["pss_mb"]
                if bench.args.py_spy:
                    result["profile_200_clients"] = profile_run(bench, names, Path(bench.args.py_spy))
        finally:
            bench.disconnect(names)
        if clients == 1:
            time.sleep(SETTLE)  # handlers notice the close within their 1 s queue timeout
            idle = bench.web_memory()
            rss["idle"], pss["idle"] = idle["rss_mb"], idle["pss_mb"]
            threads["idle"] = int(idle["threads"])
    time.sleep(SETTLE)
    left = bench.web_memory()
    rss["after_disconnect"], pss["after_disconnect"] = left["rss_mb"], left["pss_mb"]
    threads["after_disconnect"] = int(left["threads"])
    bench.procs.stop("web", grace=20)
    top = max(CLIENT_COUNTS)
    result["relay_gunicorn"] = relay
    result["web_rss_mb"] = rss
    result["web_pss_mb"] = pss
    result["web_threads"] = threads
    result["kb_per_client"] = round((pss[f"{top}_clients"] - pss["idle"]) * 1024 / top, 1)
    result["kb_per_client_rss"] = round((rss[f"{top}_clients"] - rss["idle"]) * 1024 / top, 1)
    result["kb_per_client_after_runs"] = round((pss[f"{top}_clients_after_runs"] - pss["idle"]) * 1024 / top, 1)
    log(f"memory: PSS {pss}, RSS {rss}, threads {threads}")


def waitress_phase(bench: Bench, result: dict[str, Any]) -> None:
    """Measure 50 clients against waitress with /ws on its Werkzeug side listener."""
    bench.start_web("waitress")
    names = bench.connect("waitress-50", SUSTAINED_CLIENTS)
    try:
        result["relay_waitress_side_listener"] = {
            str(SUSTAINED_CLIENTS): bench.latency(names, f"waitress side listener, {SUSTAINED_CLIENTS} clients")
        }
    finally:
        bench.disconnect(names)
        bench.procs.stop("web", grace=20)


def goal(result: dict[str, Any]) -> dict[str, Any]:
    """Return the issue's goals and whether this run met them."""
    top = str(max(CLIENT_COUNTS))
    p99 = result["relay_gunicorn"][top]["p99"]
    runs = [*result["relay_gunicorn"].values(), *result.get("relay_waitress_side_listener", {}).values()]
    lost = sum(r["lost"] for r in runs)
    dup = sum(r["dup"] for r in runs)
    return {
        "p99_ms_at_200": p99,
        "p99_target_ms": GOAL_P99_MS,
        "p99_met": p99 <= GOAL_P99_MS,
        "lost": lost,
        "dup": dup,
        "zero_loss_met": lost == 0 and dup == 0,
        "kb_per_client": result["kb_per_client"],
        "kb_per_client_target": GOAL_KB_PER_CLIENT,
        "memory_met": result["kb_per_client"] < GOAL_KB_PER_CLIENT,
    }


def drive(args: argparse.Namespace) -> dict[str, Any]:
    """Run every phase and return the result."""
    import importlib.metadata

    workdir = Path(tempfile.mkdtemp(prefix="alarmq-bench-events-"))
    started = time.monotonic()
    result: dict[str, Any] = {}
    ok = False
    try:
        with Processes(workdir) as procs:
            redis_url = start_redis(procs, free_port(args.redis_port), workdir)
            log(f"redis at {redis_url}, logs in {workdir}")
            bench = Bench(procs, workdir, redis_url, args)
            result.update(measure_floor(bench))
            gunicorn_phase(bench, result)
            if not args.no_waitress:
                waitress_phase(bench, result)
            result["goal"] = goal(result)
        ok = True
    finally:
        if ok and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            log(f"logs kept in {workdir}")
    versions = {p: importlib.metadata.version(p) for p in ("gunicorn", "waitress", "flask-sock", "simple-websocket")}
    result["setup"] = {
        "events_per_run": args.events,
        "interval_ms": round(args.interval * 1000, 1),
        "repeats": args.repeats,
        "receiver_processes": RECEIVERS,
        "web_threads": WEB_THREADS,
        "cpus": os.cpu_count(),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        **versions,
        "seconds": round(time.monotonic() - started, 1),
    }
    return result


def on_alarm(signum: int, frame: FrameType | None) -> None:
    """End the run when its overall deadline passes (the process trees are stopped on the way out)."""
    raise TimeoutError("the benchmark ran past its --deadline")


def parse_args() -> argparse.Namespace:
    """Return the command line's options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", choices=("drive", "receive", "publish"), default="drive")
    parser.add_argument("--quick", action="store_true", help="one run per client count, 100 events")
    parser.add_argument("--events", type=int, default=200, help="events per latency run")
    parser.add_argument("--interval", type=float, default=0.02, help="seconds between events in latency runs")
    parser.add_argument("--repeats", type=int, default=3, help="latency runs per client count")
    parser.add_argument(
        "--burst", type=int, default=0, help="events in the sustained burst (default: 80%% of the queue)"
    )
    parser.add_argument("--redis-port", type=int, default=6431, help="first port to try for the private Redis")
    parser.add_argument("--deadline", type=int, default=290, help="seconds before the whole run is abandoned")
    parser.add_argument("--py-spy", help="also profile the web worker during an extra 200-client run, to this file")
    parser.add_argument("--no-jobs", action="store_true", help="skip the real-worker job.finished run")
    parser.add_argument("--no-waitress", action="store_true", help="skip the waitress side-listener run")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir with the logs")
    # the roles' own options
    parser.add_argument("--redis-url", help=argparse.SUPPRESS)
    parser.add_argument("--transport", choices=("ws", "redis"), default="ws", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--sockets", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--lifetime", type=float, default=600, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=("tick", "raw", "job"), default="tick", help=argparse.SUPPRESS)
    parser.add_argument("--run", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.events = 1, 100
    return args


def main() -> None:
    """Play the role the command line asks for; the driver prints one JSON line."""
    args = parse_args()
    if args.role == "receive":
        signal.signal(signal.SIGTERM, stop_on_signal)
        if args.transport == "redis":
            receive_redis(args.redis_url, args.lifetime)
        else:
            receive_ws(args.url, args.sockets, args.lifetime)
        return
    if args.role == "publish":
        publish_role(args.redis_url, args.workdir, args.mode, args.run, args.count, args.interval)
        return
    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, raise_on_sigterm)
    signal.signal(signal.SIGINT, raise_on_sigterm)
    signal.alarm(args.deadline)
    result = drive(args)
    signal.alarm(0)
    print(json.dumps(result, separators=(",", ":")))


if __name__ == "__main__":
    main()
