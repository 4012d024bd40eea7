"""Run an alarmq scheduler: `python scheduler.py` is `alarmq scheduler` (Procfile, Docker)."""

from alarmq.cli import main

if __name__ == "__main__":
    main(["scheduler", *__import__("sys").argv[1:]])
