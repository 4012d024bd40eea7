"""Run the whole stack for `alarmq up`: Redis (when embedded), web, worker and scheduler.

The supervisor is the only process that starts an embedded Redis; children
find it through REDIS_URL. Each child runs in its own process group, so a
Ctrl-C reaches only the supervisor, which stops them in order. A child that
exits on its own is reported and takes the stack down: nothing is restarted
silently. On Linux every child also dies with the supervisor, even a SIGKILLed one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import IO

from alarmq import auth, connection, processes
from alarmq.embedded import EmbeddedRedis
from alarmq.errors import ConfigError
from alarmq.settings import Settings

log = logging.getLogger(__name__)

ROLES = ("web", "worker", "scheduler")
# Workers finish their running job on SIGTERM; give them this long.
STOP_GRACE = 30.0


class Supervisor:
    """Start the stack, forward its logs, and stop all of it together."""

    def __init__(self, settings: Settings, out: Callable[[str], None] = print) -> None:
        self.settings = settings
        self.out = out
        self.redis: EmbeddedRedis | None = None
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.signals = 0

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.signals += 1

    def start_redis(self) -> str:
        """Return the Redis URL, starting the embedded server when REDIS_URL is unset."""
        if self.settings.redis_url:
            conn = connection.connect(self.settings)
            connection.check(conn, self.settings.redis_url)  # never fall back to an embedded server
            conn.close()
            return self.settings.redis_url
        if not self.settings.embedded_redis:
            raise ConfigError("REDIS_URL is not set and ALARMQ_EMBEDDED_REDIS=0 forbids starting one; set REDIS_URL")
        self.redis = EmbeddedRedis(self.settings.data_dir, self.settings.redis_server)
        return self.redis.start()

    def run(self) -> int:
        """Run until a signal or a child's exit; return the exit code."""
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        try:
            # Redis first, before any thread exists: PDEATHSIG is tied to the
            # spawning thread and preexec_fn is unsafe once threads run.
            url = self.start_redis()
            token, new = auth.ensure_token(self.settings)
            env = {**os.environ, "REDIS_URL": url, "ALARMQ_API_TOKEN": token, "PYTHONUNBUFFERED": "1"}
            if self.settings.windows_mode:
                env["ALARMQ_WINDOWS_MODE"] = "1"
            for role in ROLES:
                self.children[role] = self._spawn(role, env)
            for role, child in self.children.items():
                assert child.stdout is not None
                threading.Thread(target=_forward, args=(role, child.stdout, self.out), daemon=True).start()
            self._greet(token, new)
            return self._watch()
        finally:
            self.stop()

    def _spawn(self, role: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "alarmq", role],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=processes.preexec(),  # noqa: PLW1509 - all spawned before any thread
        )

    def _greet(self, token: str, new: bool) -> None:
        s = self.settings
        mode = "windows mode: waitress + simple worker" if s.windows_mode else f"{s.effective_web_server} web"
        self.out(f"alarmq is up on http://{s.host}:{s.port}/ ({mode}); press Ctrl-C to stop")
        if new:
            self.out(f"admin API token (shown once, kept in {s.token_file}): {token}")
        elif not s.api_token:
            self.out(f"admin API token: see {s.token_file}")

    def _watch(self) -> int:
        while not self.signals:
            for role, child in self.children.items():
                code = child.poll()
                if code is not None:
                    self.out(f"alarmq: {role} exited with code {code}; stopping the stack")
                    return 1
            time.sleep(0.2)
        return 0

    def stop(self) -> None:
        """Stop every child (worker last, so it can finish its job), then Redis."""
        for child in self.children.values():
            _signal(child, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for role, child in self.children.items():
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.out(f"alarmq: {role} did not stop within {STOP_GRACE:.0f}s; killing it")
                _signal(child, signal.SIGKILL)
                child.wait()
        self.children.clear()
        if self.redis is not None:
            self.redis.stop()
            self.redis = None


def _signal(child: subprocess.Popen[bytes], sig: int) -> None:
    if child.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if hasattr(os, "killpg"):
            # The whole group: gunicorn's master and workers, the pool and its children.
            os.killpg(child.pid, sig)
        else:
            child.terminate()


def _forward(role: str, stream: IO[bytes], out: Callable[[str], None]) -> None:
    prefix = f"{role:<9}| "
    for raw in iter(stream.readline, b""):
        out(prefix + raw.decode(errors="replace").rstrip())
