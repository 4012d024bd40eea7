"""Tie child processes' lives to their parent's, and read their memory."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:  # pragma: no cover - runs between fork and exec, or in a fresh child
    """Ask Linux to send this process SIGTERM when its parent thread exits."""
    # The kernel fires on the exit of the *thread* that forked us, so spawn
    # from the main thread; preexec_fn is unsafe once other threads run.
    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def preexec() -> Callable[[], None] | None:
    """Return the preexec_fn for a child that must die with us (None where unsupported)."""
    return die_with_parent if sys.platform.startswith("linux") else None


def rss_mb() -> float:
    """Return this process's resident memory in MB (0 where it cannot be read)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, AttributeError):
        pass
    try:
        import resource  # not on Windows

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / (2**20 if sys.platform == "darwin" else 2**10)
    except ImportError:
        return 0.0
