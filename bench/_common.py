"""Shared benchmark helpers: progress lines, deadlines, free ports, process trees, memory and a private Redis."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO

REDIS_SERVER = os.environ.get("BENCH_REDIS_SERVER", "/usr/bin/redis-server")
# Somebody else's Redis lives here; a benchmark never binds or flushes it.
FORBIDDEN_PORTS = frozenset({6379})


def log(message: str) -> None:
    """Print one progress line to stderr."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def wait_until(check: Callable[[], bool], deadline_s: float, what: str, every: float = 0.05) -> float:
    """Poll `check` until it returns true and return the seconds waited; raise TimeoutError past the deadline."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > deadline_s:
            raise TimeoutError(f"{what}: not done after {deadline_s:.0f}s")
        time.sleep(every)
    return time.monotonic() - started


def median(values: Sequence[float], digits: int = 1) -> float:
    """Return the median of `values`, rounded."""
    return round(statistics.median(values), digits)


def ratio(numerator: float | None, denominator: float | None, digits: int = 3) -> float | None:
    """Return numerator/denominator rounded, or None when either is missing or the denominator is 0."""
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, digits)


def free_port(start: int) -> int:
    """Return the first port from `start` on that nothing on 127.0.0.1 is bound to."""
    for port in range(start, start + 500):
        if port in FORBIDDEN_PORTS:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {start}..{start + 499}")


# -- process trees and memory -------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    """Return /proc/PID/stat's fields after the command name (field 3 on), or None if the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def start_time(pid: int) -> int | None:
    """Return the process's start time in clock ticks (tells a live process from a reused pid)."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def tree_pids(root: int) -> list[int]:
    """Return `root` and all of its descendants, parents first."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat_fields(int(entry))):
            children.setdefault(int(fields[1]), []).append(int(entry))
    found = [root]
    for pid in found:
        found.extend(children.get(pid, []))
    return found


def _rollup_kb(pid: int) -> tuple[int, int]:
    """Return (Rss, Pss) in kB from /proc/PID/smaps_rollup; zeros if the process is gone."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def tree_memory(root: int) -> dict[str, float]:
    """Return the process count and the summed RSS and PSS (MB) of `root`'s process tree."""
    pids = tree_pids(root)
    values = [_rollup_kb(pid) for pid in pids]
    return {
        "n": len(pids),
        "rss_mb": round(sum(v[0] for v in values) / 1024, 1),
        "pss_mb": round(sum(v[1] for v in values) / 1024, 1),
    }


def _signal_tree(members: Mapping[int, int | None], sig: signal.Signals) -> None:
    """Send `sig` to each still-living member (pid -> start time) and to its process group."""
    for pid, started in members.items():
        if started is None or start_time(pid) != started:
            continue  # gone, or the pid now belongs to somebody else
        with contextlib.suppress(ProcessLookupError, PermissionError):
            pgid = os.getpgid(pid)
            if pgid == pid:  # a group leader this tree started (Popen sessions, alarmq's worker children)
                os.killpg(pgid, sig)
            else:
                os.kill(pid, sig)


def _alive(members: Mapping[int, int | None]) -> list[int]:
    """Return the members that still run (zombies count as gone)."""
    alive = []
    for pid, started in members.items():
        fields = _stat_fields(pid)
        if fields and started is not None and int(fields[19]) == started and fields[0] != "Z":
            alive.append(pid)
    return alive


class Processes:
    """Start children in their own sessions and stop each one's whole tree, also on errors."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.procs: dict[str, subprocess.Popen[str]] = {}
        self._logs: dict[str, IO[str]] = {}

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop_all()

    def start(
        self, name: str, cmd: list[str], env: Mapping[str, str], cwd: Path, capture: bool = False
    ) -> subprocess.Popen[str]:
        """Start `cmd` in a new session, output to LOGDIR/NAME.log (or a pipe the caller drains and closes)."""
        if name in self.procs and self.procs[name].poll() is None:
            raise RuntimeError(f"{name} already runs")
        out: IO[str] | int = subprocess.PIPE
        if not capture:
            out = self._logs[name] = open(self.logdir / f"{name}.log", "a")  # noqa: SIM115 - closed in stop()
        proc = subprocess.Popen(
            cmd, env=dict(env), cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, text=True
        )
        self.procs[name] = proc
        return proc

    def pid(self, name: str) -> int:
        """Return the pid of the running process `name`, or raise if it has exited."""
        proc = self.procs[name]
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with code {proc.returncode}; see {self.logdir / (name + '.log')}")
        return proc.pid

    def stop(self, name: str, grace: float = 15.0) -> None:
        """SIGTERM the root's group, SIGKILL whatever of its tree is left after `grace` seconds."""
        proc = self.procs.pop(name, None)
        if proc is None:
            return
        members = {pid: start_time(pid) for pid in tree_pids(proc.pid)}
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while (proc.poll() is None or _alive(members)) and time.monotonic() < deadline:
            time.sleep(0.05)
        if proc.poll() is None or _alive(members):
            log(f"{name}: still running {grace:.0f}s after SIGTERM; killing its tree")
            _signal_tree(members, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
        if name in self._logs:
            self._logs.pop(name).close()

    def stop_all(self) -> None:
        """Stop every process this object started, newest first."""
        for name in reversed(list(self.procs)):
            try:
                self.stop(name)
            except Exception as exc:  # keep stopping the others
                log(f"stopping {name} failed: {exc!r}")


def start_redis(procs: Processes, port: int, workdir: Path) -> str:
    """Start a private, non-persistent redis-server on `port` and return its base URL once it answers."""
    if port in FORBIDDEN_PORTS:
        raise RuntimeError(f"port {port} is not ours to use")
    datadir = workdir / "redis"
    datadir.mkdir(parents=True, exist_ok=True)
    cmd = [
        REDIS_SERVER,
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--save", "",
        "--appendonly", "no",
        "--dir", str(datadir),
        "--daemonize", "no",
    ]  # fmt: skip
    procs.start("redis", cmd, os.environ, workdir)

    def answers() -> bool:
        procs.pid("redis")
        with socket.socket() as sock:
            sock.settimeout(0.5)
            try:
                sock.connect(("127.0.0.1", port))
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
            except OSError:
                return False

    wait_until(answers, 15, f"redis-server on port {port}")
    return f"redis://127.0.0.1:{port}"


def raise_on_sigterm(signum: int, frame: FrameType | None) -> None:
    """Turn SIGTERM into SystemExit so every started process is stopped on the way out."""
    raise SystemExit(128 + signum)


def alarmq_env(redis_url: str, token: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """Return the environment of an alarmq process under test: this one's, minus any alarmq settings, plus these."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALARMQ_") and k != "REDIS_URL"}
    env.update(REDIS_URL=redis_url, ALARMQ_API_TOKEN=token, ALARMQ_DATA_DIR=str(data_dir),
               PYTHONDONTWRITEBYTECODE="1", **extra)  # fmt: skip
    return env
