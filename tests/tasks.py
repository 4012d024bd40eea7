"""Tasks that only the tests register, through ALARMQ_TASK_MODULES=tests.tasks."""

from __future__ import annotations

from alarmq import task

_LEAK: list[bytes] = []


@task
def leak(mb: int) -> int:
    """Keep `mb` megabytes alive forever, like a leaky task, and return the total held."""
    _LEAK.append(b"x" * (mb * 2**20))
    return sum(len(b) for b in _LEAK) // 2**20
