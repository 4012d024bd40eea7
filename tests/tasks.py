"""Tasks that only the tests register, through ALARMQ_TASK_MODULES=tests.tasks."""

from __future__ import annotations

from alarmq import check, task

_LEAK: list[bytes] = []


@task
def leak(mb: int) -> int:
    """Keep `mb` megabytes alive forever, like a leaky task, and return the total held."""
    _LEAK.append(b"x" * (mb * 2**20))
    return sum(len(b) for b in _LEAK) // 2**20


@task(retries=1, retry_intervals=[1])
def flaky(key: str) -> int:
    """Fail on the first attempt for `key` and succeed on the next, counting attempts in Redis."""
    from rq import get_current_job

    job = get_current_job()
    assert job is not None
    attempts = int(job.connection.incr(f"test:flaky:{key}"))
    if attempts == 1:
        raise RuntimeError("first attempt fails")
    return attempts


@task
def tally(name: str) -> int:
    """Count one execution of the running slot under `name`; return how often that slot ran."""
    from rq import get_current_job

    job = get_current_job()
    assert job is not None
    return int(job.connection.hincrby(f"test:tally:{name}", str(job.meta.get("slot")), 1))


DISK = {"used": 0.0}


@check
def disk_ok(limit: float = 90.0) -> tuple[bool, float, str]:
    """Judge a pretend disk whose fill level the tests set in DISK."""
    used = DISK["used"]
    return used <= limit, used, f"disk at {used:g}%"
