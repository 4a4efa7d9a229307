"""Posting a verse for a schedule slot, exactly once: claim in the database, send, record.

Who posts a slot is decided by the database, not by the scheduler: `claim_post_slot` inserts the
(channel, slot) row and its unique constraint lets one process win; the winner then takes the
send with `begin_post_send`, a compare-and-set on the claimed row, sends, and marks the row sent
or failed. Any number of schedulers may tick at the same slot; one message goes out.

Recovery of a crash between claim and send (every tick looks at claimed rows):

- claimed, no send begun (`sent_at` empty): nothing can have reached Telegram, so resending is
  safe. Within the misfire grace period the post is sent now (whoever wins `begin_post_send`, the
  original owner included, sends it; the others step back); later it is recorded as missed.
- claimed, send begun: the message may or may not be in the channel, and the Bot API cannot say.
  Resending could post it twice, so once the sender has surely given up or died (retry window plus
  the send timeouts) the row is marked failed and the admins are told. A possible loss is
  recorded and reported; a duplicate is never risked. A claimed verse is never a candidate again,
  whatever the outcome (db/repositories/posts.py), so no later slot or restart resends it either.

Stopping: from the claim to the recorded outcome a post runs as its own task that cancelling the
tick does not cut short; `drain()` (called on stop) waits for it.

The database down: a claim needs the database, so nothing is sent without its claim committed. A
send's outcome (sent as message N, or failed) that cannot be written waits in the outbox
(db/outbox.py, kept in a file across restarts) until the database is back; meanwhile recovery
leaves that post alone.

Misfires: at each tick the latest due slot is posted if it is at most `misfire_grace_s` old.
Slots that passed unposted since the channel's last row (the service was down, or a send was
still retrying) are coalesced into one "failed" row at the last of them, whose error names how
many slots were missed and when ("missed: N slot(s) from A to B ...").
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial

from telegram import Bot
from telegram.error import TelegramError

from bot.logs import log_context
from bot.scheduler.buffer import Candidate, CandidateBuffer
from bot.scheduler.candidates import normalise
from bot.scheduler.delivery import DeliveryFailed, send_post
from bot.scheduler.slots import ONE_US, Schedule, slot_key
from db import repositories as repo
from db.errors import StateConflictError
from db.outbox import Outbox
from db.session import Database, unavailable_reason
from models.errors import RnnbotError

log = logging.getLogger(__name__)

CHANNEL_NAME = re.compile(r"^@[A-Za-z][A-Za-z0-9_]{3,31}$")
ISO_SLOT = r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00)"
MISSED = re.compile(rf"^missed: (\d+) slots? from {ISO_SLOT} to {ISO_SLOT}")
STALE_CANDIDATE_TRIES = 5
OUTCOME = "post_outcome"  # the outbox's kind for a send's outcome


def parse_channel(value: str | int) -> int | str:
    """CHANNEL_ID: a numeric chat id (e.g. -1001234567890) or a public @name."""
    text = str(value).strip()
    if re.fullmatch(r"-?\d{1,19}", text):
        return int(text)
    if CHANNEL_NAME.match(text):
        return text
    raise RnnbotError(f"CHANNEL_ID must be a numeric chat id (e.g. -1001234567890) or a channel's @name, "
                      f"got {text!r}")


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class PostResult:
    slot: datetime
    status: str  # sent, failed, missed, taken (another process has this slot)
    text: str | None = None
    message_id: int | None = None
    error: str | None = None


class Poster:
    def __init__(self, bot: Bot, database: Database, buffer: CandidateBuffer, *, channel: int | str,
                 schedule: Schedule, misfire_grace_s: float, retry_window_s: float, send_timeout_s: float = 20.0,
                 admin_ids=(), candidate_timeout_s: float = 60.0, metrics=None, outbox: Outbox | None = None):
        """`metrics`: a bot.metrics.Metrics that counts each slot's outcome; `outbox`: where outcomes
        wait while the database is down (default: in memory only)."""
        self.bot, self.database, self.buffer = bot, database, buffer
        self.metrics = metrics
        self.outbox = outbox if outbox is not None else Outbox(database)
        self.outbox.register(OUTCOME, apply_outcome)
        self.channel = parse_channel(channel)
        self.schedule = schedule
        self.misfire_grace_s, self.retry_window_s = misfire_grace_s, retry_window_s
        self.send_timeout_s = send_timeout_s
        self.admin_ids = sorted(admin_ids)
        self.candidate_timeout_s = candidate_timeout_s
        self.baseline: datetime | None = None  # slots at or before it are never "missed" (schedule change)
        self._channel_id = self.channel if isinstance(self.channel, int) else None
        self._lock = asyncio.Lock()  # one slot at a time in this process
        self._sending: set[int] = set()
        self._unstoppables: set[asyncio.Task] = set()  # see _unstoppable
        self._reported: set[str] = set()  # admin reports already sent, until the next success
        self._outage: str | None = None  # why the last tick failed, while the database is unreachable

    @property
    def stale_after_s(self) -> float:
        """How long after a send began its sender has surely given up or died."""
        return self.retry_window_s + 4 * self.send_timeout_s  # connect, write, read and pool timeouts

    @property
    def sending(self) -> bool:
        """Whether a message is on its way to Telegram right now."""
        return bool(self._sending)

    @property
    def known_channel_id(self) -> int | None:
        """The channel's numeric id once known (an @name is looked up on the first post)."""
        return self._channel_id

    def set_schedule(self, schedule: Schedule, now: datetime | None = None) -> None:
        self.schedule, self.baseline = schedule, now or utcnow()

    async def channel_id(self) -> int:
        if self._channel_id is None:
            chat = await self.bot.get_chat(self.channel)
            self._channel_id = chat.id
        return self._channel_id

    # ----- entry points -----
    async def tick(self, now: datetime | None = None) -> list[PostResult]:
        """Recover interrupted posts, post the due slot, record missed ones (see the module docstring)."""
        now = now or utcnow()
        try:
            results = await self._tick(now)
        except Exception as exc:
            reason = unavailable_reason(exc)
            if reason is not None:  # kept to name the cause when the missed slots are recorded
                self._outage = f"the database was unreachable ({reason})"
            raise
        self._outage = None
        return self._counted(results)

    async def post_now(self) -> PostResult:
        """Post at once (/post_now, `rnnbot post`): the slot is the current second."""
        return self._counted([await self._post_now()])[0]

    def _counted(self, results: list[PostResult]) -> list[PostResult]:
        if self.metrics is not None:
            for result in results:
                self.metrics.post(result.status)
        return results

    async def _tick(self, now: datetime) -> list[PostResult]:
        async with self._lock:
            channel_id = await self._channel_or_report()
            if channel_id is None:
                return []
            results = await self._recover(channel_id, now)
            latest = self.schedule.latest_at_or_before(now)
            if latest is None:
                return results
            last = await self.database.run(lambda s: repo.latest_post_slot(s, channel_id=channel_id))
            floor = max((t for t in (last, self.baseline) if t is not None), default=None)
            if floor is not None and latest <= floor:
                return results
            missed, first_missed = self.schedule.slots_between(floor, latest) if floor else (0, None)
            last_missed = self.schedule.latest_at_or_before(latest - ONE_US) if missed else None
            post_latest = (now - latest).total_seconds() <= self.misfire_grace_s
            if not post_latest and floor is not None:  # on the very first run nothing was missed
                missed, first_missed, last_missed = missed + 1, first_missed or latest, latest
            # Missed slots are recorded before the post: a stop during a slow send must not leave a
            # gap that no later tick sees (they only look after the channel's last row).
            if missed:
                results.append(await self._record_missed(channel_id, missed, first_missed, last_missed,
                                                         latest if post_latest else None))
            if post_latest:
                results.append(await self._post(channel_id, latest))
            return results

    async def _post_now(self) -> PostResult:
        async with self._lock:
            slot = utcnow().replace(microsecond=0)
            try:
                channel_id = await self.channel_id()
            except TelegramError as exc:
                return PostResult(slot, "failed", error=f"cannot find channel {self.channel}: {exc.message}")
            return await self._post(channel_id, slot)

    # ----- one slot -----
    async def _post(self, channel_id: int, slot: datetime) -> PostResult:
        with log_context(slot=slot_key(slot)):  # JSON log lines name the slot (tasks started here too)
            for _ in range(STALE_CANDIDATE_TRIES):
                candidate = await self.buffer.take(self.candidate_timeout_s)
                if candidate is None:
                    return await self._fail_without_candidate(channel_id, slot)
                result = await self._unstoppable(self._claim_and_send(channel_id, slot, candidate))
                if result is not None:
                    return result
            return await self._fail_without_candidate(channel_id, slot)

    async def _claim_and_send(self, channel_id: int, slot: datetime, candidate: Candidate) -> PostResult | None:
        """Claim the slot and send the candidate; None if the candidate turned out unusable."""
        outcome, post_id = await self.database.run(lambda s: self._claim(s, channel_id, slot, candidate))
        if outcome == "taken":
            self.buffer.put_back(candidate)
            return PostResult(slot, "taken")
        if outcome == "claimed":
            return await self._send(channel_id, post_id, slot, candidate.text)
        log.info("dropping a buffered candidate: %s", outcome)
        return None

    @staticmethod
    def _claim(session, channel_id: int, slot: datetime, candidate: Candidate) -> tuple[str, int | None]:
        verse = normalise(candidate.text)
        if any(normalise(text) == verse for text in repo.posted_texts(session)):
            repo.reject_generation(session, generation_id=candidate.generation_id, reason="posted before")
            return "verse posted before", None
        try:
            post = repo.claim_post_slot(session, channel_id=channel_id, slot=slot,
                                        generation_id=candidate.generation_id)
        except StateConflictError:  # claimed by another process (a reloaded candidate), or rejected since
            return "candidate already used", None
        return ("taken", None) if post is None else ("claimed", post.id)

    async def _unstoppable(self, work):
        """Run `work` (a claim, a send) as a task that cancelling the tick cannot cut short, so that
        stopping never leaves a claimed slot unsent or a sent message unrecorded (APScheduler's
        shutdown cancels running jobs). `drain()` waits for these tasks."""
        task = asyncio.get_running_loop().create_task(work)
        self._unstoppables.add(task)
        task.add_done_callback(self._unstoppables.discard)
        return await asyncio.shield(task)

    async def drain(self, timeout: float) -> None:
        """Wait for claimed posts to be sent and recorded (on stop). One still going after `timeout`
        is cancelled; its row is left to recovery (see the module docstring)."""
        pending = set(self._unstoppables)
        if not pending:
            return
        _, late = await asyncio.wait(pending, timeout=timeout)
        for task in late:
            log.error("a post still in progress after %gs is abandoned; the next start deals with its row", timeout)
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _send(self, channel_id: int, post_id: int, slot: datetime, text: str) -> PostResult:
        if not await self.database.run(lambda s: repo.begin_post_send(s, post_id=post_id)):
            return PostResult(slot, "taken")  # another process took over this claimed post
        self._sending.add(post_id)
        try:
            try:
                message = await send_post(self.bot, channel_id, text, retry_window_s=self.retry_window_s,
                                          send_timeout_s=self.send_timeout_s)
            except DeliveryFailed as exc:
                await self._record_outcome(slot, post_id=post_id, error=exc.reason)
                log.error("slot %s: not posted: %s", slot_key(slot), exc.reason)
                # Once per cause until a post succeeds; every post that may or may not have arrived.
                key = None if exc.uncertain else (exc.reason if exc.permanent else "gave up retrying")
                await self.report(f"could not post to {self.channel} for slot {slot_key(slot)}: {exc.reason}",
                                   key=key)
                return PostResult(slot, "failed", text, error=exc.reason)
            await self._record_outcome(slot, post_id=post_id, message_id=message.message_id)
        finally:
            self._sending.discard(post_id)
        self._reported.clear()
        log.info("slot %s: posted message %d to %s", slot_key(slot), message.message_id, self.channel)
        return PostResult(slot, "sent", text, message.message_id)

    # ----- interrupted posts, missed slots -----
    async def _recover(self, channel_id: int, now: datetime) -> list[PostResult]:
        claimed = await self.database.run(lambda s: [(p.id, p.slot, p.sent_at, p.generation.text)
                                            for p in repo.unsent_posts(s, channel_id=channel_id)])
        results = []
        waiting = {w.data["post_id"] for w in self.outbox.waiting(OUTCOME)}
        for post_id, slot, sent_at, text in claimed:
            if post_id in self._sending or post_id in waiting:
                continue  # being sent, or its outcome waits for the database
            if sent_at is None:
                if (now - slot).total_seconds() <= self.misfire_grace_s:
                    with log_context(slot=slot_key(slot)):
                        log.warning("slot %s was claimed but never sent (a stopped process?): sending it now",
                                    slot_key(slot))
                        results.append(await self._unstoppable(self._send(channel_id, post_id, slot, text)))
                    continue
                cause = self._outage or "the process that claimed it stopped, or lost the database, before sending"
                error = (f"missed: 1 slot from {slot_key(slot)} to {slot_key(slot)}: claimed but never sent "
                         f"({cause}), and the grace period has passed")
                if await self.database.run(partial(repo.fail_claimed_post, post_id=post_id, error=error)):
                    results.append(PostResult(slot, "missed", text, error=error))
            else:
                gave_up = now - timedelta(seconds=self.stale_after_s)
                if sent_at >= gave_up:
                    continue  # a live process may still be sending it
                error = (f"interrupted while sending: no outcome was recorded within {self.stale_after_s:g}s of "
                         f"the send (its process stopped, or could not reach the database): it may or may not "
                         "be in the channel, and it is not resent, to avoid a duplicate post")
                if await self.database.run(partial(repo.fail_claimed_post, post_id=post_id, error=error,
                                          started_before=gave_up)):
                    log.error("slot %s: %s", slot_key(slot), error, extra={"slot": slot_key(slot)})
                    await self.report(f"slot {slot_key(slot)} of {self.channel}: {error}")
                    results.append(PostResult(slot, "failed", text, error=error))
        return results

    async def _record_missed(self, channel_id: int, count: int, first: datetime, last: datetime,
                             posted: datetime | None) -> PostResult:
        why = (f"coalesced into the post for {slot_key(posted)}" if posted is not None else
               f"more than the {self.misfire_grace_s:g}s grace period ago, so not posted late")
        cause = self._outage or "the scheduler was down or still busy with an earlier slot"
        error = (f"missed: {count} slot{'s' if count > 1 else ''} from {slot_key(first)} to {slot_key(last)} "
                 f"({cause}): {why}")
        recorded = await self._record_slot_failure(channel_id, last, error)
        if not recorded:
            return PostResult(last, "taken")
        log.warning("slot %s: %s", slot_key(last), error, extra={"slot": slot_key(last)})
        return PostResult(last, "missed", error=error)

    async def _fail_without_candidate(self, channel_id: int, slot: datetime) -> PostResult:
        reasons = sorted({reason for _, reason in self.buffer.last_round.rejected})
        error = (f"no acceptable candidate within {self.candidate_timeout_s:g}s"
                 + (f" (last rejections: {'; '.join(reasons[:5])})" if reasons else ""))
        recorded = await self._record_slot_failure(channel_id, slot, error)
        if not recorded:
            return PostResult(slot, "taken")
        await self.report(f"slot {slot_key(slot)} of {self.channel}: {error}", key="no candidate")
        return PostResult(slot, "failed", error=error)

    async def _record_slot_failure(self, channel_id: int, slot: datetime, error: str) -> bool:
        """Take `slot` as a failed row without a verse; False if another process has the slot."""
        post = await self.database.run(
            lambda s: repo.record_unposted_slot(s, channel_id=channel_id, slot=slot, error=error))
        return post is not None

    # ----- reporting -----
    async def _channel_or_report(self) -> int | None:
        try:
            return await self.channel_id()
        except TelegramError as exc:
            error = f"cannot find channel {self.channel}: {type(exc).__name__}: {exc.message}"
            log.error("%s; nothing is posted until it is fixed", error)
            await self.report(error, key=error)
            return None

    async def report(self, text: str, key: str | None = None) -> None:
        """Tell every admin once (per `key`, until the next successful post)."""
        if key is not None:
            if key in self._reported:
                return
            self._reported.add(key)
        for admin_id in self.admin_ids:
            try:
                await self.bot.send_message(chat_id=admin_id, text=f"Auto-posting problem: {text}")
            except TelegramError as exc:
                log.warning("could not tell admin %d about a posting problem: %s", admin_id, exc.message)

    # ----- database -----
    async def _record_outcome(self, slot: datetime, **outcome) -> None:
        """Write the send's outcome, or keep it in the outbox until the database takes it."""
        if not await self.outbox.write(OUTCOME, outcome):
            log.warning("slot %s: the database is not taking writes; its outcome waits in the outbox",
                        slot_key(slot))


def apply_outcome(session, data: dict) -> None:
    """The outbox's applier for a send's outcome (idempotent: see record_post_outcome)."""
    repo.record_post_outcome(session, post_id=data["post_id"], message_id=data.get("message_id"),
                             error=data.get("error"))


def parse_missed(error: str | None) -> tuple[int, datetime, datetime] | None:
    """The (count, first slot, last slot) a "missed" row covers, or None for other rows."""
    match = MISSED.match(error or "")
    if match is None:
        return None
    return int(match.group(1)), datetime.fromisoformat(match.group(2)), datetime.fromisoformat(match.group(3))
