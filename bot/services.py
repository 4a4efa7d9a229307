"""What every handler needs, built once per process and kept in `application.bot_data["services"]`.

Database calls are synchronous SQLAlchemy; handlers run them with `services.database.run(...)`,
one transaction on a worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from telegram import Update
from telegram.ext import Application, CallbackContext

from bot import health, records
from bot.health import HealthServer
from bot.heavy import HeavyWork
from bot.metrics import Metrics
from bot.ratelimit import RateLimiter
from bot.scheduler.service import PostingService
from bot.settings import Settings
from bot.worker import GenerationWorker, ModelStore
from db import repositories as repo
from db.migrate import require_head
from db.outbox import Outbox
from db.session import Database, database_errors, safe_url
from models.bundled import default_model
from models.device import describe as describe_device
from models.device import resolve_device
from models.errors import RnnbotError

log = logging.getLogger(__name__)


class ModelNotFound(RnnbotError):
    """Neither MODEL_PATH nor the model registry names a checkpoint that exists."""


@dataclass
class Services:
    settings: Settings
    database: Database
    models: ModelStore
    worker: GenerationWorker
    limiter: RateLimiter
    metrics: Metrics = field(default_factory=Metrics)  # served at /metrics with the health endpoint
    heavy: HeavyWork = field(default_factory=HeavyWork)  # /neuron pictures, candidate scoring (bot/heavy.py)
    model_paths: dict[str, str] = field(default_factory=dict)  # what `models` was loaded from
    started_at: float = field(default_factory=time.time)
    outbox: Outbox | None = None  # writes waiting for the database (db/outbox.py)
    posting: PostingService | None = None  # auto-posting, when CHANNEL_ID is set (bot/app.py)
    health: HealthServer | None = None  # when HEALTH_PORT is set
    reload_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    unrecorded: int = 0  # requests answered (or being answered) and not yet stored (handlers/generation.py)
    known_preferences: dict = field(default_factory=dict)  # user id -> Preferences, for a database outage

    def is_admin(self, user_id: int | None) -> bool:
        return self.settings.is_admin(user_id)


def get_services(context_or_application: CallbackContext | Application) -> Services:
    application = getattr(context_or_application, "application", context_or_application)
    return application.bot_data["services"]


def model_name(path: str | Path) -> str:
    """A run directory's name (runs/kjv -> kjv), as the trainer registers it; for a file, its folder's."""
    p = Path(path)
    if p.is_dir() or not p.suffix:
        return p.resolve().name
    return p.resolve().parent.name or p.stem


def resolve_models(settings: Settings, database: Database) -> tuple[dict[str, str], str]:
    """The checkpoints to serve: every active registry model plus the default model.

    The default is MODEL_PATH when set (it wins over a registry entry of the same name: the
    operator's explicit choice; if it does not exist, the newest active registry model). Without
    MODEL_PATH: a trained run in MODEL_RUN_DIR, else the bundled KJV model.
    """
    with database_errors(database.url), database.transaction() as session:
        active = [m for m in repo.list_models(session) if m.active]
    paths: dict[str, str] = {}
    for entry in reversed(active):  # oldest first, so the newest of a name wins
        if Path(entry.path).exists():
            paths[entry.name] = entry.path
        else:
            log.warning("registered model %r: %s does not exist; skipped", entry.name, entry.path)
    configured = settings.model_path
    if not configured:
        path, where = default_model(settings.model_run_dir)
        default = model_name(path)
        paths[default] = str(path)
        log.info("MODEL_PATH is not set: the default model is %s", where)
        return paths, default
    if Path(configured).exists():
        default = model_name(configured)
        paths[default] = configured
        return paths, default
    newest = next((m.name for m in active if m.name in paths), None)
    if newest is None:
        raise ModelNotFound(f"no model to serve: MODEL_PATH={configured!r} does not exist and the model "
                            "registry has no active checkpoint (train one with `rnnbot train`, set MODEL_PATH to "
                            "a run directory or .safetensors file, or unset it to use the bundled model)")
    log.warning("MODEL_PATH=%r does not exist; serving the registry's newest active model %r", configured, newest)
    return paths, newest


def outbox_for(settings: Settings, database: Database, role: str) -> Outbox:
    """The outbox of one kind of process (serve, scheduler, post), kept in OUTBOX_DIR. The file's name
    also names the database, so writes never wait for, or land in, another one."""
    digest = hashlib.sha256(safe_url(database.url).encode()).hexdigest()[:8]
    outbox = Outbox(database, path=Path(settings.outbox_dir) / f"{role}-{digest}.jsonl",
                    max_writes=settings.outbox_max_writes)
    outbox.register(records.EXCHANGE, records.apply_exchange)  # the scheduler's poster registers its own
    return outbox


def create_services(settings: Settings, *, migrate: bool = False, role: str = "serve") -> Services:
    """Check the database's schema (or with `migrate`, upgrade it: `rnnbot sandbox`), sync the admin
    flags, load the models (the slow part), build the worker. `role` names the process's outbox
    file (see outbox_for)."""
    database = Database(settings.database_url)
    log.info("database: %s", safe_url(database.url))
    try:
        with database_errors(database.url):
            if migrate:
                database.upgrade()
            else:
                require_head(database.engine)
            with database.transaction() as session:
                repo.sync_admins(session, admin_ids=settings.admin_user_ids)
        paths, default = resolve_models(settings, database)
        device = resolve_device(settings.device)
        log.info("generating on %s", describe_device(device))
        models = ModelStore(paths, default, settings.generation_precision, device)
    except BaseException:
        database.close()
        raise
    metrics = Metrics()
    worker = GenerationWorker(models, queue_size=settings.queue_size, max_batch=settings.max_batch,
                              batch_wait_s=settings.batch_wait_ms / 1000, metrics=metrics)
    metrics.watch_queue(lambda: worker.pending)
    metrics.watch_models(models)
    limiter = RateLimiter(settings.rate_limit_count, settings.rate_limit_window_s)
    log.info("serving models %s (default %r)", ", ".join(sorted(paths)), default)
    try:
        outbox = outbox_for(settings, database, role)
    except OSError as exc:
        database.close()
        raise RnnbotError(f"OUTBOX_DIR={settings.outbox_dir!r} is not usable: {exc.strerror or exc}") from None
    heavy = HeavyWork(settings.heavy_workers, settings.heavy_queue_size)
    return Services(settings, database, models, worker, limiter, metrics, heavy=heavy, model_paths=paths,
                    outbox=outbox)


def start_health_server(services: Services) -> HealthServer | None:
    """GET /healthz and /metrics on HEALTH_HOST:HEALTH_PORT, when HEALTH_PORT is set (not 0)."""
    settings = services.settings
    if not settings.health_port:
        return None
    check = health.service_check(services.database, services.models, services.worker, services.outbox)
    return HealthServer(settings.health_host, settings.health_port, check, metrics=services.metrics)


async def require_admin(update: Update, context: CallbackContext) -> bool:
    """True for admins (ADMIN_USER_IDS); everyone else gets a polite refusal and nothing runs."""
    user = update.effective_user
    if get_services(context).is_admin(user.id if user else None):
        return True
    if update.callback_query is not None:
        await update.callback_query.answer("Sorry, only the bot's administrators can do that.", show_alert=True)
    elif update.effective_message is not None:
        await update.effective_message.reply_text("Sorry, that command is only for the bot's administrators.")
    return False
