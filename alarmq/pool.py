"""Supervise N worker processes: replace recycled or crashed ones, reap abandoned jobs.

The parent imports the task modules once and forks its children (spawns them
on Windows), so children share those pages and never import per job. Signals
only set a flag; the loop forwards a warm shutdown (SIGTERM) to the children,
waits for their running jobs, and a second signal makes that a cold one.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import os
import signal
import sys
import time
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

import redis

from alarmq import connection, processes, reaper, registry, workers
from alarmq.connection import Redis
from alarmq.settings import Settings

log = logging.getLogger(__name__)

REAP_EVERY = 5.0
MAX_BACKOFF = 30.0
# A child that dies sooner than this after its start counts as crash-looping.
FAST_CRASH = 5.0


def _child_main(settings: Settings, queues: list[str], burst: bool) -> None:
    if hasattr(os, "setpgrp"):
        # Own process group: a Ctrl-C in the terminal reaches only the parent,
        # which forwards exactly one shutdown signal per signal it gets.
        os.setpgrp()
    processes.die_with_parent()  # orphans finish their job and stop
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    registry.load(settings.task_modules)  # a no-op after fork; needed after spawn
    conn = connection.connect(settings)
    try:
        code = workers.run(conn, settings, queues, burst=burst)
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        # RQ retries Redis itself while working; this is Redis vanishing during teardown.
        log.warning("worker process %s: redis unavailable at shutdown (%s)", os.getpid(), exc)
        code = 1
    sys.exit(code)


class Pool:
    """N worker processes and the loop that keeps them running."""

    def __init__(self, settings: Settings, queues: list[str], concurrency: int, burst: bool = False) -> None:
        self.settings = settings
        self.queues = queues
        self.concurrency = concurrency
        self.burst = burst
        self.signals = 0
        self.forwarded = 0
        method = "fork" if hasattr(os, "fork") else "spawn"
        self.ctx: Any = multiprocessing.get_context(method)
        self.children: dict[int, BaseProcess] = {}
        self.started_at: dict[int, float] = {}
        self.crashes: dict[int, int] = {}
        self.done: set[int] = set()
        self.respawn_at: dict[int, float] = {}

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.signals += 1

    def _spawn(self, slot: int) -> None:
        process = self.ctx.Process(
            target=_child_main, args=(self.settings, self.queues, self.burst), name=f"alarmq-worker-{slot}"
        )
        process.start()
        self.children[slot] = process
        self.started_at[slot] = time.monotonic()
        log.info("worker process %s started (pid %s)", slot, process.pid)

    def run(self) -> int:
        """Run until every child is done (burst) or a signal stopped them; return the exit code."""
        registry.load(self.settings.task_modules)  # once, before forking
        # Objects imported so far are never freed; freezing them keeps the
        # collector from touching (and so copying) their pages in every child.
        gc.freeze()
        conn = connection.connect(self.settings)
        connection.check(conn, self.settings.redis_url)
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        for slot in range(self.concurrency):
            self._spawn(slot)
        next_reap = 0.0
        backoff = 1.0
        while len(self.done) < self.concurrency:
            live = [p.sentinel for s, p in self.children.items() if s not in self.done and s not in self.respawn_at]
            wait(live, timeout=0.5)
            self._forward_signals()
            for slot, process in list(self.children.items()):
                if slot not in self.done and slot not in self.respawn_at and process.exitcode is not None:
                    self._handle_exit(slot, process.exitcode)
            for slot, at in list(self.respawn_at.items()):
                if self.signals:
                    self.done.add(slot)
                    del self.respawn_at[slot]
                elif time.monotonic() >= at:
                    del self.respawn_at[slot]
                    self._spawn(slot)
            if time.monotonic() >= next_reap:
                backoff = self._reap(conn, backoff)
                next_reap = time.monotonic() + max(REAP_EVERY, backoff)
        return 0

    def _forward_signals(self) -> None:
        while self.forwarded < self.signals:
            self.forwarded += 1
            mode = "warm" if self.forwarded == 1 else "cold"
            log.info("stopping %d worker process(es): %s shutdown", len(self.children) - len(self.done), mode)
            for slot, process in self.children.items():
                if slot not in self.done and process.pid is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(process.pid, signal.SIGTERM)

    def _handle_exit(self, slot: int, code: int) -> None:
        if self.signals:
            self.done.add(slot)
        elif code == workers.RECYCLE_EXIT:
            log.info("worker process %s recycled; starting its replacement", slot)
            self._spawn(slot)
        elif code == 0 and self.burst:
            self.done.add(slot)
        else:
            lived = time.monotonic() - self.started_at[slot]
            self.crashes[slot] = self.crashes.get(slot, 0) + 1 if lived < FAST_CRASH else 0
            delay = min(2.0 ** self.crashes[slot], MAX_BACKOFF) if self.crashes[slot] else 0
            log.error("worker process %s exited with code %s; starting a new one in %.0fs", slot, code, delay)
            # Scheduled, not slept: the loop keeps forwarding signals and reaping meanwhile.
            self.respawn_at[slot] = time.monotonic() + delay

    def _reap(self, conn: Redis, backoff: float) -> float:
        try:
            reaper.reap(conn, self.queues)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            log.warning("reaper: redis unavailable (%s); next try in %.0fs", exc, backoff)
            return min(backoff * 2, MAX_BACKOFF)
        except Exception:
            log.exception("reaper: unexpected error")
        return 1.0
