"""Posting schedules: a 5-field cron expression or an interval (`90s`, `10m`, `3h`, `1d`), in UTC.

A slot is the instant a post is due. Interval slots are aligned to a fixed epoch, so every
process (and every restart) computes the same slots, which is what makes them claimable once.

Cron expressions follow crontab: minute hour day-of-month month day-of-week, with day-of-week
0 or 7 = Sunday (APScheduler 3 counts 0 as Monday, so the field is translated to day names).
When both day-of-month and day-of-week are restricted, a slot must match both (APScheduler's
rule; classic cron fires when either matches).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from models.errors import RnnbotError

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
INTERVAL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# How far back to look for the latest cron slot: short first (cheap for frequent schedules),
# then longer (a yearly schedule needs more than a year).
CRON_LOOKBACKS = (timedelta(hours=2), timedelta(days=2), timedelta(days=40), timedelta(days=800))
ONE_US = timedelta(microseconds=1)


class ScheduleError(RnnbotError):
    """POST_SCHEDULE (or /schedule) is not a cron expression or interval we can run."""


@dataclass(frozen=True)
class Schedule:
    expression: str
    interval: timedelta | None  # set for interval schedules
    cron: CronTrigger | None  # set for cron schedules

    @property
    def trigger(self):
        """The APScheduler trigger that fires at every slot."""
        if self.interval is not None:
            return IntervalTrigger(seconds=self.interval.total_seconds(), start_date=EPOCH, timezone=UTC)
        return self.cron

    def next_after(self, moment: datetime) -> datetime | None:
        """The first slot strictly after `moment`."""
        if self.interval is not None:
            return self.latest_at_or_before(moment) + self.interval
        return self.cron.get_next_fire_time(None, moment + ONE_US)

    def latest_at_or_before(self, moment: datetime) -> datetime | None:
        """The last slot at or before `moment` (None for a cron with no slot in the last ~2 years)."""
        if self.interval is not None:
            return EPOCH + ((moment - EPOCH) // self.interval) * self.interval
        for lookback in CRON_LOOKBACKS:
            latest, probe = None, self.cron.get_next_fire_time(None, moment - lookback)
            while probe is not None and probe <= moment:
                latest, probe = probe, self.cron.get_next_fire_time(None, probe + ONE_US)
            if latest is not None:
                return latest
        return None

    def slots_between(self, after: datetime, before: datetime, limit: int = 10_000) -> tuple[int, datetime | None]:
        """How many slots lie strictly between `after` and `before`, and the first of them.

        Counting stops at `limit` for cron schedules (a long outage of a minutely schedule)."""
        if self.interval is not None:
            first = self.next_after(after)
            if first >= before:
                return 0, None
            return (before - ONE_US - first) // self.interval + 1, first
        count, first, probe = 0, None, self.next_after(after)
        while probe is not None and probe < before and count < limit:
            count, first = count + 1, first or probe
            probe = self.next_after(probe)
        return count, first

    def describe(self) -> str:
        if self.interval is not None:
            return f"every {self.expression} (UTC-aligned)"
        return f"cron {self.expression!r} (UTC)"


def parse_schedule(expression: str) -> Schedule:
    """A Schedule whose next slots APScheduler can compute, or ScheduleError saying what is wrong."""
    if not isinstance(expression, str) or not expression.strip():
        raise ScheduleError("the schedule is empty: give a cron expression (e.g. '0 */3 * * *') "
                            "or an interval (e.g. 90s, 10m, 3h)")
    expression = " ".join(expression.split())
    shown = quote(expression)
    match = INTERVAL.match(expression)
    if match:
        seconds = float(match.group(1)) * UNIT_SECONDS[match.group(2)]
        if seconds < 1 or seconds != int(seconds):
            raise ScheduleError(f"the interval must be a whole number of seconds, at least 1s, got {shown}")
        try:
            schedule = Schedule(expression, timedelta(seconds=seconds), None)
        except OverflowError:
            raise ScheduleError(f"the interval {shown} cannot be used: it is longer than any date can reach") from None
        return check_fires(schedule)
    fields = expression.split()
    if len(fields) == 5:
        minute, hour, day, month, weekday = fields
        try:
            cron = CronTrigger(minute=minute, hour=hour, day=day, month=month,
                               day_of_week=crontab_weekdays(weekday), timezone=UTC)
        except ValueError as exc:
            raise ScheduleError(f"{shown} is not a valid cron expression: {exc}") from None
        if cron.get_next_fire_time(None, datetime.now(UTC)) is None:
            raise ScheduleError(f"cron expression {shown} never fires")
        return check_fires(Schedule(expression, None, cron))
    raise ScheduleError(f"the schedule must be a 5-field cron expression (e.g. '0 */3 * * *') or an interval "
                        f"(e.g. 90s, 10m, 3h), got {shown}")


def check_fires(schedule: Schedule, now: datetime | None = None) -> Schedule:
    """`schedule` if APScheduler's trigger and the slot arithmetic can compute its next two slots and
    the last one; else ScheduleError (an interval whose slots lie past the year 9999, ...)."""
    now = now or datetime.now(UTC)
    try:
        trigger = schedule.trigger
        first = trigger.get_next_fire_time(None, now)
        second = None if first is None else trigger.get_next_fire_time(first, first + ONE_US)
        if first is None or second is None:
            raise ValueError("it never fires again")
        schedule.latest_at_or_before(now)
        schedule.next_after(second)
    except (ValueError, OverflowError) as exc:
        raise ScheduleError(f"the schedule {quote(schedule.expression)} cannot be used: {exc}") from None
    return schedule


def quote(text: str, limit: int = 60) -> str:
    """User text in a message: quoted and cut short (a reply must stay within Telegram's limits)."""
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def crontab_weekdays(field: str) -> str:
    """A crontab day-of-week field (0-7, 0 and 7 = Sunday, names, ranges, steps) as APScheduler
    day names, e.g. '1-5' -> 'mon,tue,wed,thu,fri', '*/2' -> 'sun,tue,thu,sat'."""
    if field == "*":
        return "*"
    days: set[int] = set()
    for part in field.lower().split(","):
        span, _, step_text = part.partition("/")
        step = _weekday_number(step_text, part, lowest=1) if step_text else 1
        if span == "*":
            first, last = 0, 6
        elif "-" in span:
            first_text, _, last_text = span.partition("-")
            first, last = _weekday_number(first_text, part), _weekday_number(last_text, part)
            if first > last:
                raise ValueError(f"day-of-week range {part!r} runs backwards")
        else:
            first = _weekday_number(span, part)
            last = 6 if step_text else first  # '1/2' means 1-6/2, as in cron
        days.update(day % 7 for day in range(first, last + 1, step))
    return ",".join(WEEKDAYS[day] for day in sorted(days))


def _weekday_number(text: str, part: str, lowest: int = 0) -> int:
    if text in WEEKDAYS:
        return WEEKDAYS.index(text)
    if not re.fullmatch(r"[0-9]", text) or not lowest <= int(text) <= 7:  # isdigit() accepts "²"
        raise ValueError(f"day of week {part!r}: use 0-7 (0 and 7 are Sunday) or sun..sat")
    return int(text)


def slot_key(slot: datetime) -> str:
    """The slot as stored and shown: UTC, second precision, ISO 8601."""
    return slot.astimezone(UTC).replace(microsecond=0).isoformat()
