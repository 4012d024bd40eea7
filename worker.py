"""Run an alarmq worker: `python worker.py` is `alarmq worker` (Procfile, Docker)."""

from alarmq.cli import main

if __name__ == "__main__":
    main(["worker", *__import__("sys").argv[1:]])
