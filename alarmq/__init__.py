"""alarmq: a small job-and-alarm service on RQ and Redis.

Importing alarmq pulls in neither Flask nor RQ; `from alarmq import task`
is all a task module needs.
"""

from __future__ import annotations

from alarmq.registry import check, schedule, task

__version__ = "0.1.0"
__all__ = ["__version__", "check", "schedule", "task"]
