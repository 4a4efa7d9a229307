"""Auto-posting as a service: the candidate buffer, the poster, and an APScheduler that ticks at
every slot, built by `build_service(...)`: with the Application's bot by `rnnbot serve`
(bot/app.py), with a plain `telegram.Bot` by `rnnbot scheduler` and `rnnbot post`.

Why a plain AsyncIOScheduler and not PTB's JobQueue: the same service must run without an
Application (`rnnbot scheduler`), and it needs nothing from PTB's job wrapper. APScheduler only
decides *when* to look; whether a slot is posted is decided by the database (see poster.py), so
several schedulers may run at once and nothing is stored in an APScheduler job store.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from telegram import Bot

from bot.heavy import HeavyWork
from bot.scheduler.buffer import CandidateBuffer, CandidateRules
from bot.scheduler.candidates import CorpusIndex
from bot.scheduler.poster import Poster, parse_channel, utcnow
from bot.scheduler.schedule_store import ScheduleStore
from bot.scheduler.slots import Schedule, ScheduleError, parse_schedule
from bot.settings import Settings
from bot.worker import GenerationWorker, ModelStore
from db import repositories as repo
from db.outbox import Outbox
from db.session import Database, unavailable_reason
from models.errors import RnnbotError
from trainer.corpora import CorpusError, load_corpus

log = logging.getLogger(__name__)

POST_JOB = "post"
SCHEDULE_POLL_S = 30.0  # how often a schedule changed by another process (/schedule) is noticed
STOP_WAIT_S = 10.0  # on stop, how long a post in progress may take to finish


class JobAddedAtDebug(logging.Filter):
    """APScheduler logs every job it adds ("Adding job tentatively ...") at INFO; our own line
    ("posting to ... on ...") already says what was scheduled, so those go to DEBUG."""

    QUIET = ("Adding job tentatively", "Added job ")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or not str(record.msg).startswith(self.QUIET):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def quieten_apscheduler() -> None:
    logging.getLogger("apscheduler.executors").setLevel(logging.WARNING)  # else two lines per tick
    scheduler_log = logging.getLogger("apscheduler.scheduler")
    if not any(isinstance(f, JobAddedAtDebug) for f in scheduler_log.filters):
        scheduler_log.addFilter(JobAddedAtDebug())


class PostingService:
    def __init__(self, poster: Poster, buffer: CandidateBuffer, store: ScheduleStore, *, corpus_spec: str = "",
                 run_schedule: bool = True):
        """`run_schedule` False: only /post_now and `rnnbot post` post (POST_IN_BOT=false)."""
        self.poster, self.buffer, self.store = poster, buffer, store
        self.corpus_spec, self.run_schedule = corpus_spec, run_schedule
        self.scheduler: AsyncIOScheduler | None = None
        self._ticks: set[asyncio.Task] = set()
        self._started = False
        self._problem_reported: str | None = None

    @property
    def schedule(self) -> Schedule:
        return self.poster.schedule

    async def start(self) -> None:
        if self._started:
            return
        await load_post_corpus(self.buffer, self.corpus_spec)
        await self.buffer.start()
        self._started = True
        await self._report_schedule_problem()
        if not self.run_schedule:
            return
        quieten_apscheduler()
        self.scheduler = AsyncIOScheduler(timezone=UTC, job_defaults={
            "coalesce": True, "max_instances": 1,
            "misfire_grace_time": None})  # always run late ticks: the poster decides what is missed
        self.scheduler.add_job(self.tick, self.schedule.trigger, id=POST_JOB, name="post a verse")
        self.scheduler.add_job(self._watch_schedule, "interval", seconds=SCHEDULE_POLL_S, name="watch /schedule")
        self.scheduler.start()
        log.info("posting to %s on %s", self.poster.channel, self.schedule.describe())
        # At once: finish interrupted posts and catch up with a slot missed while down.
        self._ticks.add(asyncio.get_running_loop().create_task(self.tick()))

    async def stop(self) -> None:
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)  # this cancels a running tick
        # A tick waiting for a candidate stops now; a post already claimed is sent and recorded first.
        running = [task for task in self._ticks if not task.done()]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        await self.poster.drain(STOP_WAIT_S)
        await self.buffer.stop()
        self._started = False

    async def tick(self) -> list:
        task = asyncio.current_task()
        self._ticks.add(task)
        try:
            return await self.poster.tick()
        except Exception as exc:
            reason = unavailable_reason(exc)
            if reason is None:
                log.exception("posting failed")
            else:  # nothing was sent without its claim; the slot is recorded once the database is back
                log.error("posting failed: the database is unreachable (%s)", reason)
            return []
        finally:
            self._ticks.discard(task)

    # ----- changing the schedule at runtime -----
    async def set_schedule(self, expression: str, changed_by: int | None = None) -> Schedule:
        """Validate, save (see schedule_store.py) and apply; ScheduleError changes nothing."""
        schedule = await asyncio.to_thread(self.store.save, expression, changed_by)
        self._apply(schedule)
        return schedule

    async def reset_schedule(self) -> Schedule:
        schedule = await asyncio.to_thread(self.store.reset)
        self._apply(schedule)
        return schedule

    def _apply(self, schedule: Schedule) -> None:
        self.poster.set_schedule(schedule)
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.reschedule_job(POST_JOB, trigger=schedule.trigger)
        log.info("posting schedule is now %s", schedule.describe())

    async def _watch_schedule(self) -> None:
        """Another process (the bot, when this is `rnnbot scheduler`) may have changed the schedule."""
        def reload() -> Schedule | None:
            return self.store.load() if self.store.changed() else None

        try:
            schedule = await asyncio.to_thread(reload)
        except Exception:
            log.warning("could not check for a changed schedule; trying again later", exc_info=True)
            return
        if schedule is not None and schedule.expression != self.schedule.expression:
            self._apply(schedule)
        await self._report_schedule_problem()

    async def _report_schedule_problem(self) -> None:
        """Tell the admins once that the saved schedule cannot be used (see ScheduleStore.load)."""
        if self.store.problem and self.store.problem != self._problem_reported:
            await self.poster.report(self.store.problem)
        self._problem_reported = self.store.problem


def load_corpus_index(spec: str, generator) -> CorpusIndex | None:
    """The corpus posts must not copy: POST_CORPUS, else the one the model was trained on."""
    spec = spec.strip()
    if spec.lower() == "none":
        log.warning("POST_CORPUS=none: posts are not checked for copies of the training corpus")
        return None
    name = spec or (generator.checkpoint.corpus if generator.checkpoint is not None else "")
    if not name:
        raise RnnbotError("the posting model does not record its training corpus: set POST_CORPUS "
                          "(kjv, a corpus file, or none)")
    try:
        corpus = load_corpus(name)
    except CorpusError as exc:
        raise RnnbotError(f"cannot load the corpus posts are checked against ({exc}); "
                          "set POST_CORPUS to the training corpus (or none)") from None
    return CorpusIndex(corpus.text)


async def load_post_corpus(buffer: CandidateBuffer, spec: str) -> None:
    """Give the buffer the corpus its candidates must not copy (read in a thread: it takes seconds)."""
    generator = buffer.models.get(buffer.model_name)
    buffer.corpus = await asyncio.to_thread(load_corpus_index, spec, generator)


def candidate_buffer(settings: Settings, worker: GenerationWorker, models: ModelStore, database: Database, *,
                     size: int | None = None, record: bool = True) -> CandidateBuffer:
    """The candidate buffer the POST_* settings describe (`size` defaults to POST_BUFFER_SIZE)."""
    rules = CandidateRules(min_chars=settings.post_min_chars, max_chars=settings.post_max_chars,
                           temperature=settings.post_temperature, per_round=settings.post_candidates,
                           max_unknown_words=settings.post_max_unknown_words)
    return CandidateBuffer(worker, models, rules, size=settings.post_buffer_size if size is None else size,
                           corpus=None, model=settings.post_model or None, database=database, record=record,
                           starved_after=settings.post_starved_rounds)


def check_settings(settings: Settings) -> None:
    """The posting configuration's mistakes as RnnbotError, before anything slow starts."""
    if not settings.channel_id.strip():
        raise RnnbotError("CHANNEL_ID is not set: there is no channel to post to")
    parse_channel(settings.channel_id)
    if settings.post_min_chars > settings.post_max_chars:
        raise RnnbotError(f"POST_MIN_CHARS ({settings.post_min_chars}) is above POST_MAX_CHARS "
                          f"({settings.post_max_chars})")
    try:
        parse_schedule(settings.post_schedule)
    except ScheduleError as exc:
        raise ScheduleError(f"POST_SCHEDULE: {exc}") from None


def build_service(settings: Settings, database: Database, models: ModelStore, worker: GenerationWorker,
                  bot: Bot, *, run_schedule: bool = True, metrics=None, outbox: Outbox | None = None,
                  heavy: HeavyWork | None = None) -> PostingService:
    """Everything from the settings; configuration errors raise RnnbotError here, before anything runs.

    `metrics` (bot.metrics.Metrics) counts posts and reports the time since the last one; `outbox`:
    where a send's outcome waits while the database is down (the caller starts and stops it);
    `heavy`: the bot's threads for CPU-heavy work, which candidate scoring then shares."""
    check_settings(settings)
    store = ScheduleStore(settings.post_schedule, database)
    if settings.post_model and settings.post_model not in models.names():
        log.warning("POST_MODEL=%r is not loaded (%s); posting with the default model %r",
                    settings.post_model, ", ".join(models.names()), models.default)
    buffer = candidate_buffer(settings, worker, models, database)
    buffer.heavy = heavy
    poster = Poster(bot, database, buffer, channel=settings.channel_id, schedule=store.load(),
                    misfire_grace_s=settings.post_misfire_grace_s, retry_window_s=settings.post_retry_window_s,
                    send_timeout_s=settings.post_send_timeout_s, admin_ids=settings.admin_user_ids,
                    metrics=metrics, outbox=outbox)
    # a model whose samples never pass the filters: the admins hear once, until a post succeeds
    buffer.on_starved = lambda message: poster.report(message, key="no acceptable candidates")
    if metrics is not None:
        def last_sent_at():
            with database.transaction() as session:
                return repo.last_sent_at(session)

        metrics.watch_last_post(last_sent_at, utcnow)
    return PostingService(poster, buffer, store, corpus_spec=settings.post_corpus, run_schedule=run_schedule)
