"""Schedules: cron and interval parsing, slot arithmetic, and the schedule /schedule saves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.scheduler.schedule_store import ScheduleStore
from bot.scheduler.slots import ScheduleError, crontab_weekdays, parse_schedule, slot_key
from db import repositories as repo

T = datetime(2030, 1, 1, 10, 17, 42, 500_000, tzinfo=UTC)  # a Tuesday


def test_interval_slots_are_aligned_to_a_fixed_epoch():
    every_3h = parse_schedule(" 3h ")
    assert every_3h.expression == "3h" and every_3h.interval == timedelta(hours=3)
    assert every_3h.latest_at_or_before(T) == datetime(2030, 1, 1, 9, tzinfo=UTC)
    assert every_3h.next_after(T) == datetime(2030, 1, 1, 12, tzinfo=UTC)
    assert every_3h.next_after(datetime(2030, 1, 1, 12, tzinfo=UTC)) == datetime(2030, 1, 1, 15, tzinfo=UTC)
    assert every_3h.latest_at_or_before(datetime(2030, 1, 1, 12, tzinfo=UTC)) == datetime(2030, 1, 1, 12, tzinfo=UTC)
    assert parse_schedule("90s").interval == timedelta(seconds=90)
    assert parse_schedule("1.5m").interval == timedelta(seconds=90)
    assert parse_schedule("1d").latest_at_or_before(T) == datetime(2030, 1, 1, tzinfo=UTC)
    # The APScheduler trigger fires exactly at the slots.
    assert every_3h.trigger.get_next_fire_time(None, T) == every_3h.next_after(T)


def test_cron_slots_in_utc():
    schedule = parse_schedule("0 */3 * * *")
    assert schedule.latest_at_or_before(T) == datetime(2030, 1, 1, 9, tzinfo=UTC)
    assert schedule.next_after(T) == datetime(2030, 1, 1, 12, tzinfo=UTC)
    assert schedule.next_after(datetime(2030, 1, 1, 12, tzinfo=UTC)) == datetime(2030, 1, 1, 15, tzinfo=UTC)
    yearly = parse_schedule("0 0 1 1 *")  # the latest slot is almost a year back
    assert yearly.latest_at_or_before(datetime(2030, 12, 31, tzinfo=UTC)) == datetime(2030, 1, 1, tzinfo=UTC)


def test_cron_day_of_week_counts_from_sunday_like_crontab():
    # APScheduler 3 alone would read 0 as Monday.
    sundays = parse_schedule("0 9 * * 0")
    assert sundays.next_after(T) == datetime(2030, 1, 6, 9, tzinfo=UTC)
    assert sundays.next_after(T).strftime("%A") == "Sunday"
    assert parse_schedule("0 9 * * 7").next_after(T) == datetime(2030, 1, 6, 9, tzinfo=UTC)
    assert crontab_weekdays("1-5") == "mon,tue,wed,thu,fri"
    assert crontab_weekdays("0-6") == "sun,mon,tue,wed,thu,fri,sat"
    assert crontab_weekdays("*/2") == "sun,tue,thu,sat"
    assert crontab_weekdays("5-7") == "sun,fri,sat"
    assert crontab_weekdays("MON,wed-fri") == "mon,wed,thu,fri"
    assert crontab_weekdays("1/3") == "mon,thu"


def test_slots_between_counts_what_an_outage_missed():
    hourly = parse_schedule("1h")
    nine, noon = datetime(2030, 1, 1, 9, tzinfo=UTC), datetime(2030, 1, 1, 12, tzinfo=UTC)
    assert hourly.slots_between(nine, noon) == (2, datetime(2030, 1, 1, 10, tzinfo=UTC))
    assert hourly.slots_between(nine, nine + timedelta(hours=1)) == (0, None)
    assert hourly.slots_between(nine - timedelta(minutes=30), noon) == (3, nine)
    cron = parse_schedule("0 * * * *")
    assert cron.slots_between(nine, noon) == (2, datetime(2030, 1, 1, 10, tzinfo=UTC))
    assert parse_schedule("* * * * *").slots_between(nine, noon, limit=50)[0] == 50


@pytest.mark.parametrize("bad, message", [
    ("", "the schedule is empty"),
    ("   ", "the schedule is empty"),
    ("0s", "at least 1s"),
    ("0.5s", "at least 1s"),
    ("1.5s", "whole number of seconds"),
    ("-5m", "5-field cron expression"),
    ("10 minutes", "5-field cron expression"),
    ("every day", "5-field cron expression"),
    ("* * * *", "5-field cron expression"),
    ("* * * * * *", "5-field cron expression"),
    ("61 * * * *", "not a valid cron expression"),
    ("0 24 * * *", "not a valid cron expression"),
    ("0 0 0 * *", "not a valid cron expression"),
    ("0 0 * 13 *", "not a valid cron expression"),
    ("0 0 * * 8", "use 0-7"),
    ("0 0 * * 5-1", "runs backwards"),
    ("0 0 * * */0", "use 0-7"),
    ("x y z w v", "not a valid cron expression"),
    ("0 0 31 2 *", "never fires"),
])
def test_bad_schedules_say_what_is_wrong(bad, message):
    with pytest.raises(ScheduleError, match=message):
        parse_schedule(bad)


def test_slot_key_is_utc_to_the_second():
    assert slot_key(T) == "2030-01-01T10:17:42+00:00"


def test_schedule_store_saves_validates_and_resets(fresh_db):
    store = ScheduleStore("0 */3 * * *", fresh_db)
    assert store.load().expression == "0 */3 * * *" and store.source == "POST_SCHEDULE"
    assert store.save("  90m ", changed_by=1001).expression == "90m"
    assert store.source.startswith("/schedule, 20") and store.source.endswith(" UTC")
    with fresh_db.transaction() as session:
        row = repo.get_service_setting(session, key="post_schedule")
        assert (row.value, row.changed_by) == ("90m", 1001)
    with pytest.raises(ScheduleError):
        store.save("61 * * * *")
    another = ScheduleStore("0 */3 * * *", fresh_db)  # a second process (or a restart) reads the saved one
    assert another.load().expression == "90m" and not another.changed()
    store.save("2h")
    assert another.changed() and another.load().expression == "2h" and not another.changed()
    with fresh_db.transaction() as session:  # e.g. saved by a newer version: ignored, not fatal
        repo.set_service_setting(session, key="post_schedule", value="nonsense")
    assert another.load().expression == "0 */3 * * *" and another.source == "POST_SCHEDULE"
    assert store.reset().expression == "0 */3 * * *"
    assert another.changed() and another.load().expression == "0 */3 * * *"
    with pytest.raises(ScheduleError, match="not a valid cron"):
        ScheduleStore("99 * * * *", fresh_db)


@pytest.mark.parametrize("expression", ["3000000d", "99999999999999999999d", "5000000000000h", "2900000d"])
def test_a_schedule_that_cannot_fire_is_refused_before_it_is_stored(expression, db):
    # 3000000d from the epoch (2000) fires first in the year 10213, which no datetime can hold;
    # 2900000d fires once in 9940, and never again.
    with pytest.raises(ScheduleError, match="cannot be used"):
        parse_schedule(expression)
    store = ScheduleStore("1h", db)
    with pytest.raises(ScheduleError):
        store.save(expression)
    assert store.load().expression == "1h"
