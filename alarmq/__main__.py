"""Run the alarmq CLI with `python -m alarmq`."""

from alarmq.cli import main

if __name__ == "__main__":
    main()
