"""Writes that wait for the database: kept in order, bounded, spilled to a local file.

When the database cannot take a write (stopped, unreachable, locked past its busy timeout, out of
disk), the write waits here and a background task applies it, in order, once the database takes
writes again. Each waiting write is also appended to a JSON-lines file, so a restart finds it.

    outbox = Outbox(database, path=Path("data/outbox/serve.jsonl"))
    outbox.register("post_sent", apply_post_sent)   # fn(session, data), in one transaction
    outbox.start()                                  # replays what a previous run left in the file
    written_now = await outbox.write("post_sent", {"post_id": 7, "message_id": 42})
    await outbox.stop()

- Only "the database is unavailable" errors (db.session.unavailable_reason) make a write wait;
  any other error is the caller's (bad data, a bug) and raised at once.
- While writes wait, new ones queue behind them, so they are applied in the order they were made.
- An applier must be idempotent: a stop between its commit and the file's rewrite applies it
  again at the next start.
- At most `max_writes` wait; past that a write is dropped and logged (with its kind, never its
  data). A file that cannot be written (a full disk) leaves the writes in memory only.
- Several processes may share the directory: each takes its own file (serve.jsonl, serve-2.jsonl,
  ...) under an exclusive lock, and at start takes over the writes of files nobody holds.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from db.session import Database, unavailable_reason

log = logging.getLogger(__name__)

DEFAULT_MAX_WRITES = 10_000
RETRY_S = 2.0  # how often waiting writes are tried again
MAX_FILES = 64  # serve.jsonl ... serve-64.jsonl

Applier = Callable[[Session, dict], object]


@dataclass
class Waiting:
    kind: str
    data: dict  # plain JSON
    queued_at: float


class Outbox:
    def __init__(self, database: Database, *, path: Path | str | None = None, max_writes: int = DEFAULT_MAX_WRITES,
                 retry_s: float = RETRY_S):
        """`path`: the spill file (its directory may hold other processes' files); None keeps writes in
        memory only."""
        self.database, self.max_writes, self.retry_s = database, max_writes, retry_s
        self._appliers: dict[str, Applier] = {}
        self._queue: deque[Waiting] = deque()
        self._wake = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._task: asyncio.Task | None = None
        self._lock_file = None  # held open: its lock says this process owns `path`
        self.path: Path | None = None
        self.dropped = 0
        self.last_failure: tuple[float, str] | None = None  # (time, reason) of the last refused write
        self.last_success: float | None = None
        if path is not None:
            self._open(Path(path))

    # ----- state -----
    def register(self, kind: str, applier: Applier) -> None:
        self._appliers[kind] = applier

    @property
    def pending(self) -> int:
        return len(self._queue)

    def waiting(self, kind: str | None = None) -> list[Waiting]:
        return [w for w in self._queue if kind is None or w.kind == kind]

    @property
    def writes_ok(self) -> bool:
        """False while writes wait or the last write the database was offered failed."""
        if self._queue:
            return False
        return self.last_failure is None or (self.last_success or 0) > self.last_failure[0]

    # ----- writing -----
    async def write(self, kind: str, data: dict) -> bool:
        """Apply `data` now (True), or keep it until the database takes writes again (False)."""
        applier = self._appliers[kind]
        if not self._queue:
            try:
                await self.database.run(lambda session: applier(session, data))
            except Exception as exc:
                reason = unavailable_reason(exc)
                if reason is None:
                    raise
                self._failed(reason)
            else:
                self.last_success = time.time()
                return True
        self._keep(Waiting(kind, data, time.time()))
        return False

    async def discard(self, predicate: Callable[[Waiting], bool]) -> int:
        """Drop waiting writes (e.g. a user's, when they ask to be forgotten); returns how many. Waits
        for a write being applied, so none of those lands after this returns."""
        async with self._flush_lock:
            kept = deque(w for w in self._queue if not predicate(w))
            removed = len(self._queue) - len(kept)
            if removed:
                self._queue = kept
                self._rewrite()
        return removed

    def _keep(self, waiting: Waiting) -> None:
        if len(self._queue) >= self.max_writes:
            self.dropped += 1
            log.error("the database has not taken writes for a while and %d are waiting: a %s write is dropped "
                      "(%d dropped so far)", len(self._queue), waiting.kind, self.dropped)
            return
        self._queue.append(waiting)
        self._append(waiting)
        self._wake.set()
        self._ensure_task()

    def _failed(self, reason: str) -> None:
        first = self.writes_ok
        self.last_failure = (time.time(), reason)
        if first:
            log.warning("the database is not taking writes (%s): writes wait until it does", reason)

    # ----- applying waiting writes -----
    def start(self) -> None:
        """Start applying waiting writes (those a previous run left in the file first)."""
        self._ensure_task()

    async def stop(self, timeout: float = 5.0) -> None:
        """A last try at the waiting writes; what is left stays in the file for the next start."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._queue:
            try:
                await asyncio.wait_for(self.flush(), timeout)
            except TimeoutError:
                pass
        if self._queue:
            log.warning("%d write(s) still wait for the database%s", len(self._queue),
                        f"; kept in {self.path} for the next start" if self.path else " and are lost")

    def close(self) -> None:
        """Let another process take the file (after stop())."""
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    async def flush(self) -> int:
        """Apply waiting writes in order until the database refuses one; returns how many were applied."""
        applied = dropped = 0
        async with self._flush_lock:
            while self._queue:
                waiting = self._queue[0]
                applier = self._appliers.get(waiting.kind)
                try:
                    if applier is None:
                        raise LookupError(f"no applier for {waiting.kind!r} writes")
                    await self.database.run(lambda session, a=applier, w=waiting: a(session, w.data))
                except Exception as exc:
                    reason = unavailable_reason(exc)
                    if reason is not None:
                        self._failed(reason)
                        break
                    # Refused for good (it would be refused forever): dropped, so the rest can go on.
                    log.error("a waiting %s write was refused (%s); dropped", waiting.kind, type(exc).__name__)
                    dropped += 1
                else:
                    applied += 1
                    self.last_success = time.time()
                self._queue.popleft()
            if applied or dropped:
                self._rewrite()
        if applied:
            log.info("the database takes writes again: %d waiting write(s) applied, %d still waiting",
                     applied, len(self._queue))
        return applied

    def _ensure_task(self) -> None:
        if self._task is None or self._task.done():
            try:
                self._task = asyncio.get_running_loop().create_task(self._run(), name="outbox")
            except RuntimeError:  # no event loop yet: start() does it
                pass

    async def _run(self) -> None:
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
            await self.flush()
            if self._queue:
                await asyncio.sleep(self.retry_s)

    # ----- the spill file -----
    def _open(self, path: Path) -> None:
        """Take the first free file of this name, then the writes of every other free one."""
        path.parent.mkdir(parents=True, exist_ok=True)
        stem, suffix = path.stem, path.suffix or ".jsonl"
        names = [path.parent / (f"{stem}{suffix}" if n == 1 else f"{stem}-{n}{suffix}")
                 for n in range(1, MAX_FILES + 1)]
        found: list[Waiting] = []
        for name in names:
            lock = _lock(name)
            if lock is None:
                continue  # a live process holds it
            found += _read(name)
            if self._lock_file is None:
                self._lock_file, self.path = lock, name
            else:  # a stopped process's writes: this one applies them
                name.unlink(missing_ok=True)
                lock.close()
        if self._lock_file is None:
            raise OSError(f"{path.parent}: all {MAX_FILES} outbox files are in use")
        self._queue.extend(sorted(found, key=lambda w: w.queued_at))
        if found:
            log.warning("%d write(s) an earlier run kept in %s wait for the database", len(found), path.parent)
        self._rewrite()

    def _append(self, waiting: Waiting) -> None:
        if self.path is None:
            return
        try:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(_line(waiting))
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            log.error("cannot keep a waiting write in %s (%s); it waits in memory only", self.path, exc.strerror)

    def _rewrite(self) -> None:
        """Replace the file with exactly the waiting writes (a new file renamed over the old one)."""
        if self.path is None:
            return
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                f.writelines(_line(w) for w in self._queue)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            log.error("cannot rewrite %s (%s); a restart may apply some writes twice", self.path, exc.strerror)


def _line(waiting: Waiting) -> str:
    return json.dumps(asdict(waiting), ensure_ascii=False) + "\n"


def _lock(name: Path):
    """An exclusive lock on NAME.lock, held while the returned file stays open; None if taken."""
    handle = open(name.with_name(name.name + ".lock"), "a")  # noqa: SIM115 - held for the process's life
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def _read(name: Path) -> list[Waiting]:
    try:
        lines = name.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    found = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            found.append(Waiting(str(item["kind"]), dict(item["data"]), float(item["queued_at"])))
        except (ValueError, KeyError, TypeError):  # a line cut short by a crash or a full disk
            log.error("%s line %d: not a waiting write; skipped", name, number)
    return found
