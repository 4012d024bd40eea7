"""Measure alarmq's enqueue rate, job throughput and memory side by side with plain RQ and the old Celery stack.

Run with alarmq's venv: `.venv/bin/python bench/jobs.py [--quick]`. It starts its own redis-server on a free
port from 6405 (never :6379), `alarmq web`, `alarmq worker` and `alarmq scheduler` as real processes, and the
Celery peer stack (shared/peers/celery_stack.py, in its own venv from requirements-bench.txt) against another DB
of the same Redis. Progress goes to stderr; stdout gets exactly one JSON line. Every wait has a deadline and
every process it starts is stopped with its whole tree, also on errors.

Environment: BENCH_CELERY_STACK (the peer script), BENCH_CELERY_VENV (default ~/.cache/alarmq-bench/celery-venv),
BENCH_REDIS_SERVER (default /usr/bin/redis-server).

Keys: enqueue_api_per_s is `POST /api/v1/jobs` over one keep-alive connection to `alarmq web` (gunicorn);
enqueue_inproc_per_s is `alarmq.jobs.enqueue` in this process; enqueue_raw_per_s is a plain
`rq.Queue(...).enqueue(alarmq.tasks.echo, ...)`; all are medians of interleaved rounds. jobs_per_s_* count from the
first enqueue (one at a time, from this process) to the last finished job, on 2 worker processes. Memory is the sum
of Pss (and Rss) from /proc/PID/smaps_rollup over each process tree; "stack_idle" is web + worker + scheduler after
--settle idle seconds, without Redis, and celery_stack_idle is the peer's gunicorn + worker + beat measured the same
way. worker_no_recycle repeats the flatness run with ALARMQ_WORKER_MAX_JOBS=10**9 to show growth recycling would hide.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import importlib.metadata
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import (
    Processes,
    alarmq_env,
    free_port,
    log,
    median,
    raise_on_sigterm,
    ratio,
    start_redis,
    tree_memory,
    tree_pids,
    wait_until,
)
from rq import Queue
from rq.registry import FailedJobRegistry, FinishedJobRegistry

from alarmq import connection, jobs, keys, registry
from alarmq.connection import Redis
from alarmq.settings import Settings
from alarmq.tasks import echo

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "requirements-bench.txt"
CELERY_STACK = Path(os.environ.get("BENCH_CELERY_STACK", "/work/shared/peers/celery_stack.py"))
CELERY_VENV = Path(os.environ.get("BENCH_CELERY_VENV", "~/.cache/alarmq-bench/celery-venv")).expanduser()
TOKEN = "bench-token-0123456789abcdef"
CONCURRENCY = 2
MESSAGE = "bench"
JOB_QUEUE = "default"  # where alarmq.tasks.echo goes
RAW_QUEUE = "bench-raw"
WARMUP = 50
READY_DEADLINE = 60.0
STOP_GRACE = 20.0
MEM_SETTLE = 2.0  # seconds after a batch before its memory snapshot, as the Celery peer does
WHOLE_DEADLINE = 45.0  # alarmq's pool may back off up to 30 s before replacing a child


class Stack:
    """The private Redis, the alarmq processes and the bench's own client, all in one place."""

    def __init__(self, procs: Processes, workdir: Path, redis_url: str, web_port: int) -> None:
        self.procs = procs
        self.workdir = workdir
        self.redis_url = redis_url
        self.web_port = web_port
        self.settings = Settings(redis_url=redis_url, api_token=TOKEN, data_dir=workdir / "data")
        self.conn = connection.connect(self.settings)
        self.env = alarmq_env(redis_url, TOKEN, workdir / "data", HOST="127.0.0.1", PORT=str(web_port))

    def start(self, name: str, args: list[str], **env: str) -> None:
        """Start `python -m alarmq ARGS` as process `name`."""
        self.procs.start(name, [sys.executable, "-m", "alarmq", *args], {**self.env, **env}, self.workdir)

    def memory(self, name: str) -> dict[str, float]:
        """Return the RSS/PSS of process `name`'s tree."""
        return tree_memory(self.procs.pid(name))

    def worker_memory(self, name: str) -> dict[str, float]:
        """Snapshot a worker tree once it is whole again (parent + children, none mid-recycle) and has settled."""
        for _ in range(3):
            wait_until(
                lambda: len(tree_pids(self.procs.pid(name))) == 1 + CONCURRENCY and self.workers_alive() >= CONCURRENCY,
                WHOLE_DEADLINE,
                f"{name} back to {CONCURRENCY} worker processes",
            )
            time.sleep(MEM_SETTLE)
            snapshot = self.memory(name)
            if snapshot["n"] == 1 + CONCURRENCY:
                return snapshot
        raise RuntimeError(f"{name} keeps replacing worker processes; no stable memory snapshot")

    def flush(self) -> None:
        """Empty the alarmq DB (only while no worker runs)."""
        self.conn.flushdb()

    def web_ready(self) -> bool:
        """Return True once the web process answers its health route."""
        self.procs.pid("web")
        try:
            client = http.client.HTTPConnection("127.0.0.1", self.web_port, timeout=2)
            client.request("GET", "/api/v1/health")
            return client.getresponse().status in (200, 503)
        except OSError:
            return False

    def workers_alive(self) -> int:
        """Return how many alarmq worker processes have a liveness key."""
        return len(self.conn.keys(keys.worker_alive("*")))

    def scheduler_alive(self) -> bool:
        """Return True once a scheduler has announced itself."""
        self.procs.pid("scheduler")
        return bool(self.conn.keys(keys.scheduler_presence_pattern()))

    def start_worker(self, name: str, worker_class: str, **env: str) -> None:
        """Start an `alarmq worker --concurrency 2` of `worker_class` and wait until both children are alive."""
        self.start(name, ["worker", "--concurrency", str(CONCURRENCY), "--class", worker_class], **env)

        def ready() -> bool:
            self.procs.pid(name)
            return self.workers_alive() >= CONCURRENCY

        waited = wait_until(ready, READY_DEADLINE, f"{name} ready")
        log(f"{name} ({worker_class} x{CONCURRENCY}) ready in {waited:.1f}s")

    def stop_worker(self, name: str) -> None:
        """Stop a worker and wait for its liveness keys to go, then empty the DB."""
        self.procs.stop(name, grace=STOP_GRACE)
        wait_until(lambda: self.workers_alive() == 0, 15, f"{name} liveness keys gone")
        self.flush()


# -- enqueue ----------------------------------------------------------------------


def enqueue_via_api(port: int, n: int) -> tuple[float, int]:
    """POST `n` echo jobs over one keep-alive connection; return jobs/s and how often the server closed it."""
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    body = json.dumps({"task": "echo", "kwargs": {"message": MESSAGE}})
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
    closed = 0
    started = time.perf_counter()
    for _ in range(n):
        client.request("POST", "/api/v1/jobs", body, headers)
        response = client.getresponse()
        payload = response.read()
        if response.status != 202:
            raise RuntimeError(f"POST /api/v1/jobs answered {response.status}: {payload[:200]!r}")
        closed += response.will_close
    elapsed = time.perf_counter() - started
    client.close()
    return n / elapsed, closed


def enqueue_in_process(stack: Stack, n: int) -> float:
    """Enqueue `n` echo jobs through alarmq.jobs.enqueue in this process; return jobs/s."""
    started = time.perf_counter()
    for _ in range(n):
        jobs.enqueue(stack.conn, stack.settings, "echo", {"message": MESSAGE}, source="bench")
    return n / (time.perf_counter() - started)


def enqueue_plain_rq(stack: Stack, n: int) -> float:
    """Enqueue `n` echo jobs with a plain rq Queue (default serializer) in this process; return jobs/s."""
    queue = Queue(RAW_QUEUE, connection=stack.conn)
    started = time.perf_counter()
    for _ in range(n):
        queue.enqueue(echo, MESSAGE)
    return n / (time.perf_counter() - started)


def measure_enqueue(stack: Stack, n: int, rounds: int) -> dict[str, Any]:
    """Interleave rounds of API, alarmq in-process and plain-RQ enqueues; return medians and ratios."""
    enqueue_via_api(stack.web_port, WARMUP)
    enqueue_in_process(stack, WARMUP)
    enqueue_plain_rq(stack, WARMUP)
    api: list[float] = []
    inproc: list[float] = []
    raw: list[float] = []
    closed = 0
    for i in range(rounds):
        rate, closes = enqueue_via_api(stack.web_port, n)
        api.append(rate)
        closed += closes
        inproc.append(enqueue_in_process(stack, n))
        raw.append(enqueue_plain_rq(stack, n))
        log(f"enqueue round {i}: api {api[-1]:.0f}/s, alarmq in-process {inproc[-1]:.0f}/s, plain rq {raw[-1]:.0f}/s")
    return {
        "enqueue_api_per_s": median(api),
        "enqueue_inproc_per_s": median(inproc),
        "enqueue_raw_per_s": median(raw),
        "api_over_raw": ratio(median(api), median(raw)),
        "api_over_inproc": ratio(median(api), median(inproc)),
        "enqueue_rounds": {
            "n": n,
            "api": [round(x) for x in api],
            "inproc": [round(x) for x in inproc],
            "raw": [round(x) for x in raw],
            "api_connection_closes": closed,
        },
    }


# -- throughput -------------------------------------------------------------------


def done_count(stack: Stack) -> int:
    """Return finished jobs on the echo queue; raise if any job failed."""
    failed = stack.conn.zcard(FailedJobRegistry(JOB_QUEUE, connection=stack.conn).key)
    if failed:
        raise RuntimeError(f"{failed} job(s) failed; see the worker log in {stack.workdir}")
    return int(stack.conn.zcard(FinishedJobRegistry(JOB_QUEUE, connection=stack.conn).key))


def run_batch(stack: Stack, worker: str, n: int, deadline_s: float) -> float:
    """Enqueue `n` echo jobs one by one while the workers run; return jobs/s from first enqueue to last finish."""
    base = done_count(stack)
    started = time.perf_counter()
    for _ in range(n):
        jobs.enqueue(stack.conn, stack.settings, "echo", {"message": MESSAGE}, source="bench")

    def finished() -> bool:
        stack.procs.pid(worker)
        return done_count(stack) - base >= n

    wait_until(finished, deadline_s, f"{n} jobs on {worker}", every=0.01)
    return n / (time.perf_counter() - started)


def measure_workers(
    stack: Stack, name: str, worker_class: str, n: int, rounds: int, flat_jobs: int, deadline_s: float, **env: str
) -> dict[str, Any]:
    """Run rounds of `n` jobs on a fresh 2-process worker; snapshot its memory idle, after `n` and after `flat_jobs`."""
    stack.start_worker(name, worker_class, **env)
    out: dict[str, Any] = {"idle": stack.worker_memory(name), "rates": []}
    done = 0
    for i in range(rounds):
        out["rates"].append(round(run_batch(stack, name, n, deadline_s), 1))
        done += n
        log(f"{name} round {i}: {out['rates'][-1]:.0f} jobs/s")
        if i == 0:
            out["after_first"] = stack.worker_memory(name)
    if flat_jobs > done:
        run_batch(stack, name, flat_jobs - done, deadline_s * (flat_jobs - done) / n)
        done = flat_jobs
    if flat_jobs:
        out["after_flat"] = stack.worker_memory(name)
    out["jobs_done"] = done
    out["median"] = median(out["rates"])
    stack.stop_worker(name)
    out["log_errors"] = count_errors(stack.workdir / f"{name}.log")
    return out


def count_errors(path: Path) -> int:
    """Return how many ERROR lines a process log has (alarmq's pool logs unexpected child exits so)."""
    with open(path, errors="replace") as f:
        return sum(" ERROR " in line for line in f)


# -- the Celery peer ---------------------------------------------------------------


def ensure_celery_venv(path: Path, pip_log: Path) -> Path:
    """Create or reuse the Celery peer's venv from requirements-bench.txt; return its python."""
    python = path / "bin" / "python"
    stamp = path / ".bench-requirements.sha256"
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if python.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return python
    log(f"creating the Celery peer venv at {path} from {REQUIREMENTS.name} (pip output: {pip_log})")
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(path)], check=True, timeout=180)
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-r", str(REQUIREMENTS)]
    with open(pip_log, "w") as out:
        done = subprocess.run(pip, timeout=900, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        tail = pip_log.read_text().splitlines()[-15:]
        raise RuntimeError(f"pip install -r {REQUIREMENTS.name} failed:\n" + "\n".join(tail))
    stamp.write_text(digest + "\n")
    return python


def package_versions(python: Path | str, names: list[str]) -> dict[str, str | None]:
    """Return the installed versions of `names` in the interpreter `python`."""
    code = (
        "import importlib.metadata as m, json, sys\n"
        "def v(n):\n"
        "    try: return m.version(n)\n"
        "    except m.PackageNotFoundError: return None\n"
        "print(json.dumps({n: v(n) for n in sys.argv[1:]}))"
    )
    out = subprocess.run([str(python), "-c", code, *names], check=True, timeout=60, capture_output=True, text=True)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def run_celery_peer(
    procs: Processes, python: Path, redis_url: str, workdir: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """Run celery_stack.py's own `run` mode against DB 1 of our Redis and return its SUMMARY."""
    port = free_port(5071)
    cmd = [
        str(python), str(CELERY_STACK), "run",
        "--redis-url", f"{redis_url}/1",
        "--port", str(port),
        "--settle", str(args.settle),
        "--tick-window", "1",
        "--events", "0",
        "--tasks", str(args.jobs),
        "--repeats", str(args.rounds),
        "--concurrency", str(CONCURRENCY),
        "--workdir", str(workdir / "celery"),
        "--phase-timeout", str(args.batch_deadline),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}  # the peer lives in a read-only shared folder
    proc = procs.start("celery-peer", cmd, env, workdir, capture=True)
    summary: dict[str, Any] = {}

    def pump() -> None:
        assert proc.stdout is not None
        with proc.stdout:
            for line in proc.stdout:
                if line.startswith("SUMMARY "):
                    summary.update(json.loads(line[len("SUMMARY ") :]))
                else:
                    log(f"celery peer: {line.rstrip()}")

    reader = threading.Thread(target=pump, name="celery-peer-output", daemon=True)
    reader.start()
    try:
        code = proc.wait(timeout=args.celery_deadline)
    except subprocess.TimeoutExpired:
        raise TimeoutError(f"the Celery peer ran longer than {args.celery_deadline:.0f}s") from None
    finally:
        procs.stop("celery-peer")  # the peer stops its own stack; this only mops up after a timeout
        reader.join(10)
    if code != 0 or not summary.get("throughput"):
        raise RuntimeError(f"the Celery peer exited with code {code} and no usable SUMMARY")
    return summary


def measure_celery(procs: Processes, redis_url: str, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Return the Celery peer's jobs/s and idle memory, or an error note when it cannot run."""
    if not CELERY_STACK.exists():
        return {"error": f"{CELERY_STACK} not found (set BENCH_CELERY_STACK)"}
    try:
        python = ensure_celery_venv(CELERY_VENV, workdir / "pip-celery.log")
        summary = run_celery_peer(procs, python, redis_url, workdir, args)
        versions = package_versions(python, ["celery", "kombu", "billiard", "redis", "flask-socketio", "gunicorn"])
    except (OSError, RuntimeError, TimeoutError, subprocess.SubprocessError) as exc:
        log(f"Celery peer failed: {exc}")
        return {"error": str(exc)}
    throughput = summary["throughput"]
    return {
        "jobs_per_s": throughput["jobs_per_s_median"],
        "rates": [r["jobs_per_s"] for r in throughput["runs"]],
        "enqueue_per_s": throughput["enqueue_per_s_median"],
        "mem_idle": summary["mem_idle"],
        "mem_after_tasks": summary.get("mem_after_tasks"),
        "worker_ready_s": summary.get("worker_ready_s"),
        "versions": versions,
    }


# -- the whole run ------------------------------------------------------------------


def start_idle_stack(stack: Stack, settle: float) -> dict[str, dict[str, float]]:
    """Start web, scheduler and a simple worker together, let them idle `settle` s, and snapshot each."""
    stack.start("web", ["web"])
    stack.start("scheduler", ["scheduler"])
    stack.start_worker("worker-idle", "simple")
    wait_until(stack.web_ready, READY_DEADLINE, "alarmq web ready")
    wait_until(stack.scheduler_alive, READY_DEADLINE, "alarmq scheduler ready")
    log(f"alarmq stack up; idling {settle:.0f}s")
    time.sleep(settle)
    snapshot = {
        "web": stack.memory("web"),
        "worker": stack.memory("worker-idle"),
        "scheduler": stack.memory("scheduler"),
    }
    stack.stop_worker("worker-idle")
    return snapshot


def measure_alarmq(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    """Measure the alarmq stack: idle memory, enqueue rates, worker throughput and worker memory."""
    found: dict[str, Any] = {"idle": start_idle_stack(stack, args.settle)}
    found.update(measure_enqueue(stack, args.enqueue_n, args.rounds))
    found["web_after_enqueue"] = stack.memory("web")
    stack.flush()
    found["simple"] = measure_workers(
        stack, "worker-simple", "simple", args.jobs, args.rounds, args.flat_jobs, args.batch_deadline
    )
    if not args.skip_fork:
        found["fork"] = measure_workers(stack, "worker-fork", "fork", args.jobs, args.rounds, 0, args.batch_deadline)
    if args.flat_jobs and not args.skip_no_recycle:
        found["no_recycle"] = measure_workers(
            stack, "worker-norecycle", "simple", args.jobs, 1, args.flat_jobs, args.batch_deadline,
            ALARMQ_WORKER_MAX_JOBS=str(10**9),
        )  # fmt: skip
    stack.procs.stop("scheduler")
    stack.procs.stop("web")
    return found


def versions(conn: Redis) -> dict[str, Any]:
    """Return the versions of everything on the alarmq side of the measurement."""
    names = ["alarmq", "rq", "rq-scheduler", "rq-dashboard", "redis", "flask", "werkzeug", "gunicorn"]
    found: dict[str, Any] = {n: importlib.metadata.version(n) for n in names}
    found["python"] = platform.python_version()
    found["redis_server"] = conn.info("server").get("redis_version")
    return found


def pick(mem: dict[str, float] | None, field: str) -> float | None:
    """Return one figure of a memory snapshot, or None."""
    return None if mem is None else mem[field]


def report(
    alarmq: dict[str, Any], celery: dict[str, Any], params: dict[str, Any], vers: dict[str, Any]
) -> dict[str, Any]:
    """Assemble the one JSON object the benchmark prints."""
    idle = alarmq["idle"]
    simple, fork, norec = alarmq["simple"], alarmq.get("fork"), alarmq.get("no_recycle")
    celery_idle = celery.get("mem_idle") or {}
    snapshots: dict[str, dict[str, float] | None] = {
        "web_idle": idle["web"],
        "worker_idle": idle["worker"],
        "scheduler_idle": idle["scheduler"],
        "stack_idle": {f: round(sum(idle[k][f] for k in ("web", "worker", "scheduler")), 1) for f in idle["web"]},
        "web_after_enqueue": alarmq["web_after_enqueue"],
        "worker_after_2k": simple.get("after_first"),
        "worker_after_10k": simple.get("after_flat"),
        "worker_fork_idle": fork and fork["idle"],
        "worker_fork_after_2k": fork and fork.get("after_first"),
        "celery_stack_idle": celery_idle.get("total"),
        "celery_web_idle": celery_idle.get("gunicorn"),
        "celery_worker_idle": celery_idle.get("worker"),
        "celery_beat_idle": celery_idle.get("beat"),
    }
    pss = {k: pick(v, "pss_mb") for k, v in snapshots.items()}
    rss = {k: pick(v, "rss_mb") for k, v in snapshots.items()}
    simple_rate = simple["median"]
    growth = None
    if pss["worker_after_2k"] is not None and pss["worker_after_10k"] is not None:
        growth = round(pss["worker_after_10k"] - pss["worker_after_2k"], 1)
    stack_ratio = ratio(pss["stack_idle"], pss["celery_stack_idle"])
    result: dict[str, Any] = {
        "enqueue_api_per_s": alarmq["enqueue_api_per_s"],
        "enqueue_raw_per_s": alarmq["enqueue_raw_per_s"],
        "enqueue_inproc_per_s": alarmq["enqueue_inproc_per_s"],
        "api_over_raw": alarmq["api_over_raw"],
        "api_over_inproc": alarmq["api_over_inproc"],
        "jobs_per_s_simple_x2": simple_rate,
        "jobs_per_s_fork_x2": fork and fork["median"],
        "jobs_per_s_celery_x2": celery.get("jobs_per_s"),
        "simple_over_celery": ratio(simple_rate, celery.get("jobs_per_s")),
        "fork_over_celery": ratio(fork and fork["median"], celery.get("jobs_per_s")),
        "pss_mb": pss,
        "rss_mb": rss,
        "procs": {k: v["n"] for k, v in snapshots.items() if v is not None},
        "stack_over_celery_pss": stack_ratio,
        "stack_over_celery_rss": ratio(rss["stack_idle"], rss["celery_stack_idle"]),
        "worker_pss_after_2k_mb": pss["worker_after_2k"],
        "worker_pss_after_10k_mb": pss["worker_after_10k"],
        "worker_pss_growth_mb": growth,
        "goals": {
            "api_over_raw>=0.40": None if alarmq["api_over_raw"] is None else alarmq["api_over_raw"] >= 0.40,
            "stack_over_celery_pss<=0.4": None if stack_ratio is None else stack_ratio <= 0.4,
        },
        "rounds": {
            "enqueue": alarmq["enqueue_rounds"],
            "simple_x2": simple["rates"],
            "fork_x2": fork and fork["rates"],
            "celery_x2": celery.get("rates"),
        },
        "worker_log_errors": {
            k: v["log_errors"] for k, v in (("simple", simple), ("fork", fork), ("no_recycle", norec)) if v
        },
        "celery": {k: v for k, v in celery.items() if k not in ("mem_idle", "rates", "versions", "jobs_per_s")},
        "params": params,
        "versions": {**vers, "celery_peer": celery.get("versions")},
    }
    if norec is not None:
        first, flat = pick(norec.get("after_first"), "pss_mb"), pick(norec.get("after_flat"), "pss_mb")
        result["worker_no_recycle"] = {
            "jobs_per_s_x2": norec["median"],
            "pss_after_2k_mb": first,
            "pss_after_10k_mb": flat,
            "growth_mb": None if first is None or flat is None else round(flat - first, 1),
        }
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--enqueue-n", type=int, default=1000, help="jobs per enqueue round")
    parser.add_argument("--jobs", type=int, default=2000, help="jobs per throughput round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--flat-jobs", type=int, default=10000, help="jobs before the second worker snapshot")
    parser.add_argument("--settle", type=float, default=5.0, help="idle seconds before idle snapshots")
    parser.add_argument("--batch-deadline", type=float, default=120.0, help="seconds one batch may take")
    parser.add_argument("--celery-deadline", type=float, default=300.0, help="seconds the Celery peer may take")
    parser.add_argument("--redis-port", type=int, default=6405, help="first port to try for the private Redis")
    parser.add_argument("--skip-celery", action="store_true")
    parser.add_argument("--skip-fork", action="store_true")
    parser.add_argument("--skip-no-recycle", action="store_true", help="skip the worker run with recycling off")
    parser.add_argument("--quick", action="store_true", help="small counts, for checking the harness")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs) after a successful run")
    args = parser.parse_args(argv)
    if args.quick:
        args.enqueue_n, args.jobs, args.rounds, args.flat_jobs, args.settle = 200, 300, 1, 1200, 2.0
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start everything, measure, stop everything; return the report."""
    started = time.monotonic()
    registry.load(())
    workdir = Path(tempfile.mkdtemp(prefix="alarmq-bench-"))
    log(f"work dir (process logs) {workdir}")
    ok = False
    try:
        with Processes(workdir) as procs:
            redis_url = start_redis(procs, free_port(args.redis_port), workdir)
            log(f"private redis at {redis_url}")
            stack = Stack(procs, workdir, f"{redis_url}/0", free_port(8400))
            vers = versions(stack.conn)
            alarmq = measure_alarmq(stack, args)
            celery: dict[str, Any] = {"error": "skipped"}
            if not args.skip_celery:
                celery = measure_celery(procs, redis_url, workdir, args)
        ok = True
    finally:
        if ok and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            log(f"logs kept in {workdir}")
    params = {
        "enqueue_n": args.enqueue_n,
        "jobs": args.jobs,
        "rounds": args.rounds,
        "flat_jobs": args.flat_jobs,
        "settle_s": args.settle,
        "concurrency": CONCURRENCY,
        "elapsed_s": round(time.monotonic() - started, 1),
        "loadavg_end": [round(x, 2) for x in os.getloadavg()],
    }
    return report(alarmq, celery, params, vers)


def main(argv: list[str] | None = None, out: Callable[[str], Any] = print) -> int:
    """Run the benchmark and print its one JSON line."""
    signal.signal(signal.SIGTERM, raise_on_sigterm)
    out(json.dumps(run(parse_args(argv))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
