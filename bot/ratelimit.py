"""Per-user sliding-window rate limit for completions."""

from __future__ import annotations

import time
from collections import defaultdict, deque


class RateLimiter:
    def __init__(self, count: int, window_s: float, clock=time.monotonic):
        self.count, self.window_s, self.clock = count, window_s, clock
        self._hits: dict[int, deque[float]] = defaultdict(deque)

    def check(self, user_id: int) -> float:
        """Record a request; 0.0 if allowed, else the seconds until the user may ask again."""
        return 0.0 if self.take(user_id, 1) else self._wait(user_id)

    def take(self, user_id: int, want: int) -> int:
        """Record up to `want` completions (what is left of the allowance); returns how many, 0 if none."""
        now = self.clock()
        hits = self._hits[user_id]
        while hits and now - hits[0] >= self.window_s:
            hits.popleft()
        granted = max(0, min(want, self.count - len(hits)))
        hits.extend([now] * granted)
        return granted

    def _wait(self, user_id: int) -> float:
        hits = self._hits[user_id]
        return self.window_s - (self.clock() - hits[0]) if hits else self.window_s

    def forget(self, user_id: int) -> None:
        self._hits.pop(user_id, None)
