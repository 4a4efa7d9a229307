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
        now = self.clock()
        hits = self._hits[user_id]
        while hits and now - hits[0] >= self.window_s:
            hits.popleft()
        if len(hits) >= self.count:
            return self.window_s - (now - hits[0])
        hits.append(now)
        return 0.0

    def forget(self, user_id: int) -> None:
        self._hits.pop(user_id, None)
