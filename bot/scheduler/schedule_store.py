"""Where the posting schedule comes from: POST_SCHEDULE, unless an admin changed it with /schedule.

A change is saved in the database (service_settings, key "post_schedule") and wins over
POST_SCHEDULE until `/schedule reset` deletes it. Every process that posts (the bot, its replicas,
a separate `rnnbot scheduler`) reads it from there, so they agree on any number of hosts, and
notices a change by polling `changed()`. The methods touch the database: call them off the event
loop (asyncio.to_thread).
"""

from __future__ import annotations

import logging

from bot.scheduler.slots import Schedule, ScheduleError, parse_schedule, quote
from db import repositories as repo
from db.session import Database

log = logging.getLogger(__name__)

KEY = "post_schedule"


class ScheduleStore:
    def __init__(self, default: str, database: Database):
        self.default = parse_schedule(default)  # a bad POST_SCHEDULE stops the service at start
        self.database = database
        self._seen: tuple | None = None  # (value, changed_at) when last read; None: no saved schedule
        self.source = "POST_SCHEDULE"
        self.problem: str | None = None  # why the saved schedule is not used, while it is not

    def load(self) -> Schedule:
        """The saved schedule if there is a valid one, else POST_SCHEDULE."""
        self._seen = saved = self._read()
        self.problem, self.source = None, "POST_SCHEDULE"
        if saved is None:
            return self.default
        value, changed_at = saved
        try:
            # Validated again: saved by an older version that let it through, by hand, or by a newer
            # version that knows more forms. It must never stop a start.
            schedule = parse_schedule(value)
        except ScheduleError as exc:
            self.problem = (f"the saved schedule {quote(value)} cannot be used ({exc}); posting on "
                            f"POST_SCHEDULE={self.default.expression!r} until an admin sets another with /schedule")
            log.error("%s", self.problem)
            return self.default
        self.source = f"/schedule, {changed_at:%Y-%m-%d %H:%M} UTC"
        return schedule

    def save(self, expression: str, changed_by: int | None = None) -> Schedule:
        """Validate and save; raises ScheduleError and saves nothing when `expression` is bad."""
        schedule = parse_schedule(expression)
        with self.database.transaction() as session:
            repo.set_service_setting(session, key=KEY, value=schedule.expression, changed_by=changed_by)
        return self.load()

    def reset(self) -> Schedule:
        with self.database.transaction() as session:
            repo.delete_service_setting(session, key=KEY)
        return self.load()

    def changed(self) -> bool:
        """Whether a schedule was saved, changed or reset since the last load (by any process)."""
        return self._read() != self._seen

    def _read(self) -> tuple | None:
        with self.database.transaction() as session:
            row = repo.get_service_setting(session, key=KEY)
            return None if row is None else (row.value, row.changed_at)
