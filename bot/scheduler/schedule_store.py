"""Where the posting schedule comes from: POST_SCHEDULE, unless an admin changed it with /schedule.

A change is saved to POST_SCHEDULE_FILE (one line: the expression), written atomically, and wins
over POST_SCHEDULE until `/schedule reset` deletes it. A file rather than the database because
the schedule is configuration and the database schema has no place for it; every process that
posts (the bot, a separate `rnnbot scheduler`) watches the file, so keep it on storage they share
(the `data/` volume, beside a SQLite database).
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path

from bot.scheduler.slots import Schedule, ScheduleError, parse_schedule
from models.checkpoint import atomic_write_text

log = logging.getLogger(__name__)


class ScheduleStore:
    def __init__(self, default: str, path: str | Path | None):
        self.default = parse_schedule(default)  # a bad POST_SCHEDULE stops the service at start
        self.path = Path(path) if path else None
        self._seen: int | None = None  # the file's mtime when last read (None: no file)
        self.source = "POST_SCHEDULE"

    def load(self) -> Schedule:
        """The saved schedule if there is a valid one, else POST_SCHEDULE."""
        self._seen = self._mtime()
        if self._seen is None:
            self.source = "POST_SCHEDULE"
            return self.default
        try:
            schedule = parse_schedule(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ScheduleError) as exc:
            log.error("ignoring %s (%s); using POST_SCHEDULE=%r", self.path, exc, self.default.expression)
            self.source = "POST_SCHEDULE"
            return self.default
        changed_at = datetime.fromtimestamp(self._seen / 1e9, UTC).strftime("%Y-%m-%d %H:%M UTC")
        self.source = f"/schedule, {changed_at} (saved in {self.path})"
        return schedule

    def save(self, expression: str) -> Schedule:
        """Validate and save; raises ScheduleError and saves nothing when `expression` is bad."""
        schedule = parse_schedule(expression)
        if self.path is None:
            raise ScheduleError("POST_SCHEDULE_FILE is empty, so a changed schedule could not be kept")
        atomic_write_text(self.path, schedule.expression + "\n")
        return self.load()

    def reset(self) -> Schedule:
        if self.path is not None:
            self.path.unlink(missing_ok=True)
        return self.load()

    def changed(self) -> bool:
        """Whether the file appeared, disappeared or was rewritten since the last load."""
        return self._mtime() != self._seen

    def _mtime(self) -> int | None:
        try:
            return os.stat(self.path).st_mtime_ns if self.path else None
        except FileNotFoundError:
            return None
