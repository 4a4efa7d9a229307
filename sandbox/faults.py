"""Fault injection: make the next calls of a Bot API method fail the way Telegram fails them."""

from __future__ import annotations

import itertools
import time
from dataclasses import asdict, dataclass, field

# Telegram's own wording for the usual codes, used when a fault gives no description.
DEFAULT_DESCRIPTIONS = {
    400: "Bad Request: injected fault",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict: terminated by other getUpdates request; make sure that only one bot instance "
         "is running",
    429: "Too Many Requests: retry after {retry_after}",
    500: "Internal Server Error",
    502: "Bad Gateway",
}


@dataclass
class Fault:
    """The next `count` calls of `method` (any method for "*") answer `code` + `description`.

    `count=None` fails every call until the fault is cleared. `chat_id`, when set, limits the fault
    to calls whose chat_id parameter equals it (e.g. only posts to one channel).
    """

    method: str
    code: int
    description: str = ""
    count: int | None = 1
    retry_after: int | None = None
    chat_id: int | str | None = None
    id: int = 0
    fired: int = 0

    def __post_init__(self) -> None:
        if self.code == 429 and self.retry_after is None:
            self.retry_after = 1
        if not self.description:
            template = DEFAULT_DESCRIPTIONS.get(self.code, f"Error {self.code}")
            self.description = template.format(retry_after=self.retry_after)

    def matches(self, method: str, chat_id: object) -> bool:
        if self.method != "*" and self.method.lower() != method.lower():
            return False
        return self.chat_id is None or str(self.chat_id) == str(chat_id)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class FiredFault:
    fault_id: int
    method: str
    code: int
    description: str
    time: float


@dataclass
class FaultInjector:
    faults: list[Fault] = field(default_factory=list)
    fired: list[FiredFault] = field(default_factory=list)
    # Seconds to wait before handling a call, per method name (lower case) or "*" for every method.
    latency: dict[str, float] = field(default_factory=dict)
    # Seconds to wait after handling a call, before answering: the call took effect (a message is
    # in the chat) but the client may time out first and cannot know it.
    latency_after: dict[str, float] = field(default_factory=dict)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1), repr=False)

    def add(self, method: str, code: int, description: str = "", count: int | None = 1,
            retry_after: int | None = None, chat_id: int | str | None = None) -> Fault:
        if count is not None and count < 1:
            raise ValueError("count must be positive (or None for every call)")
        fault = Fault(method=method, code=int(code), description=description, count=count,
                      retry_after=retry_after, chat_id=chat_id, id=next(self._ids))
        self.faults.append(fault)
        return fault

    def take(self, method: str, chat_id: object = None) -> Fault | None:
        """The fault this call must answer with, if any; consumes one of its `count`."""
        for fault in self.faults:
            if fault.matches(method, chat_id):
                fault.fired += 1
                if fault.count is not None:
                    fault.count -= 1
                    if fault.count == 0:
                        self.faults.remove(fault)
                self.fired.append(FiredFault(fault.id, method, fault.code, fault.description,
                                             time.time()))
                return fault
        return None

    def set_latency(self, seconds: float, method: str = "*", after: bool = False) -> None:
        delays = self.latency_after if after else self.latency
        if seconds <= 0:
            delays.pop(method.lower(), None)
        else:
            delays[method.lower()] = float(seconds)

    def delay_for(self, method: str, after: bool = False) -> float:
        delays = self.latency_after if after else self.latency
        return delays.get(method.lower(), delays.get("*", 0.0))

    def clear(self) -> None:
        self.faults.clear()
        self.latency.clear()
        self.latency_after.clear()

    def to_dict(self) -> dict:
        return {"faults": [f.to_dict() for f in self.faults],
                "fired": [asdict(f) for f in self.fired[-200:]],
                "latency": dict(self.latency), "latency_after": dict(self.latency_after)}
