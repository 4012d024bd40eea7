"""Fire times: intervals, cron in a zone across DST changes, and refusing bad expressions."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from alarmq.errors import Invalid
from alarmq.triggers import Trigger, fires_between, next_fire, parse_every, preview, trigger_of

WARSAW = ZoneInfo("Europe/Warsaw")


def utc(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())  # type: ignore[misc]


def local(*args: int) -> float:
    return datetime(*args, tzinfo=WARSAW).timestamp()  # type: ignore[misc]


def test_interval_slots_follow_the_anchor() -> None:
    every5 = Trigger(interval=5)
    assert next_fire(every5, after=100.5, anchor=100) == 105
    assert next_fire(every5, after=105, anchor=100) == 110
    assert next_fire(every5, after=90, anchor=100) == 100
    assert fires_between(every5, 100, 117, anchor=100) == [105, 110, 115]


def test_daily_cron_in_warsaw_keeps_local_time_across_spring_forward() -> None:
    daily = trigger_of(cron="0 3 * * *", timezone="Europe/Warsaw")
    times = preview(daily, local(2026, 3, 27, 12), 4)
    # 03:00 CET is 02:00 UTC; after the change on 29 March, 03:00 CEST is 01:00 UTC.
    assert times == [utc(2026, 3, 28, 2), utc(2026, 3, 29, 1), utc(2026, 3, 30, 1), utc(2026, 3, 31, 1)]


def test_time_in_the_skipped_hour_fires_once_shifted_forward() -> None:
    at_0230 = trigger_of(cron="30 2 * * *", timezone="Europe/Warsaw")
    times = preview(at_0230, local(2026, 3, 28, 12), 2)
    assert times == [utc(2026, 3, 29, 1, 30), utc(2026, 3, 30, 0, 30)]  # 03:30 CEST, then 02:30 CEST


def test_time_in_the_repeated_hour_fires_once_at_its_first_occurrence() -> None:
    at_0230 = trigger_of(cron="30 2 * * *", timezone="Europe/Warsaw")
    times = preview(at_0230, local(2026, 10, 24, 12), 2)
    assert times == [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]  # 02:30 CEST, then 02:30 CET


def test_sub_hourly_cron_runs_through_both_passes_of_the_repeated_hour() -> None:
    half_hourly = trigger_of(cron="*/30 * * * *", timezone="Europe/Warsaw")
    times = preview(half_hourly, local(2026, 10, 25, 1, 40), 6)
    assert times == [utc(2026, 10, 25, 0, 0), utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 0),
                     utc(2026, 10, 25, 1, 30), utc(2026, 10, 25, 2, 0), utc(2026, 10, 25, 2, 30)]  # fmt: skip


def test_utc_cron_ignores_the_host_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        assert preview(trigger_of(cron="0 9 * * *"), utc(2026, 12, 4, 12), 1) == [utc(2026, 12, 5, 9)]
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"cron": "0 25 * * *"}, "cron '0 25 * * *' is not valid"),
        ({"cron": "0 3 * *"}, "cron must have 5 fields"),
        ({"cron": "0 0 31 2 *"}, "is not valid"),
        ({"cron": "0 3 * * *", "timezone": "Mars/Olympus"}, "timezone 'Mars/Olympus' is not a known IANA zone"),
        ({"cron": "0 3 * * *", "timezone": "../etc/passwd"}, "timezone must be an IANA name"),
        ({"interval": 0}, "interval must be a whole number of seconds from 1"),
        ({"interval": 1.5}, "interval must be a whole number"),
        ({}, "give exactly one of interval"),
        ({"interval": 5, "cron": "* * * * *"}, "give exactly one of interval"),
    ],
)
def test_bad_triggers_are_refused_with_what_to_fix(fields: dict[str, object], message: str) -> None:
    with pytest.raises(Invalid) as excinfo:
        trigger_of(fields.get("interval"), fields.get("cron"), fields.get("timezone"))
    assert message in excinfo.value.message


def test_every_accepts_durations() -> None:
    assert [parse_every(v) for v in (30, "30s", "5m", "1h", "2d")] == [30, 30, 300, 3600, 172800]
    with pytest.raises(Invalid, match="duration like"):
        parse_every("soon")


def test_future_time_takes_zoned_iso_or_unix_seconds_within_the_limit() -> None:
    from alarmq.triggers import future_time

    now = utc(2026, 12, 4)
    assert future_time("2026-12-04T01:00:00+01:00", now, 86400) is None  # that is now: not in the future
    assert future_time("2026-12-04T02:00:00+01:00", now, 86400) == now + 3600
    assert future_time(now + 60, now, 86400) == now + 60
    for bad in ("2026-12-04T02:00:00", "tomorrow", now + 86401, True, None):
        assert future_time(bad, now, 86400) is None, bad
