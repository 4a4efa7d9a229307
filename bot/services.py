"""What every handler needs, built once per process and kept in `application.bot_data["services"]`.

Database calls are synchronous SQLAlchemy. Handlers run them with `services.run_db(...)`, which
runs one transaction in a worker thread: a SQLite writer may wait up to its busy timeout (10 s)
for another process's lock, and PostgreSQL is a network round trip, and neither may stall the
event loop that serves every other user.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.orm import Session
from telegram import Update
from telegram.ext import Application, CallbackContext

from bot.ratelimit import RateLimiter
from bot.settings import Settings
from bot.worker import GenerationWorker, ModelStore
from db import repositories as repo
from db.session import Database, database_errors
from models.errors import RnnbotError

log = logging.getLogger(__name__)
T = TypeVar("T")


class ModelNotFound(RnnbotError):
    """Neither MODEL_PATH nor the model registry names a checkpoint that exists."""


@dataclass
class Services:
    settings: Settings
    database: Database
    models: ModelStore
    worker: GenerationWorker
    limiter: RateLimiter
    model_paths: dict[str, str] = field(default_factory=dict)  # what `models` was loaded from
    started_at: float = field(default_factory=time.time)
    poster: Any = None  # the scheduler's poster, when bot.scheduler.service is installed
    health: Any = None  # bot.health.HealthServer, when HEALTH_PORT is set
    reload_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def run_db(self, work: Callable[[Session], T]) -> T:
        """Run `work(session)` in one transaction, in a thread (see the module docstring)."""
        def in_transaction() -> T:
            with self.database.transaction() as session:
                return work(session)

        return await asyncio.to_thread(in_transaction)

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
    """The checkpoints to serve: every active registry model plus MODEL_PATH, which is the default.

    MODEL_PATH wins over a registry entry of the same name (the operator's explicit choice). When
    MODEL_PATH does not exist, the newest active registry model becomes the default.
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
    if configured and Path(configured).exists():
        default = model_name(configured)
        paths[default] = configured
        return paths, default
    newest = next((m.name for m in active if m.name in paths), None)
    if newest is None:
        raise ModelNotFound(f"no model to serve: MODEL_PATH={configured!r} does not exist and the model "
                            "registry has no active checkpoint (train one with `rnnbot train`, or set "
                            "MODEL_PATH to a run directory or .safetensors file)")
    log.warning("MODEL_PATH=%r does not exist; serving the registry's newest active model %r", configured, newest)
    return paths, newest


def create_services(settings: Settings) -> Services:
    """Upgrade the database, sync the admin flags, load the models (the slow part), build the worker."""
    database = Database(settings.database_url)
    try:
        with database_errors(database.url):
            database.upgrade()
            with database.transaction() as session:
                repo.sync_admins(session, admin_ids=settings.admin_user_ids)
        paths, default = resolve_models(settings, database)
        models = ModelStore(paths, default, settings.generation_precision)
    except BaseException:
        database.close()
        raise
    worker = GenerationWorker(models, queue_size=settings.queue_size, max_batch=settings.max_batch,
                              batch_wait_s=settings.batch_wait_ms / 1000)
    limiter = RateLimiter(settings.rate_limit_count, settings.rate_limit_window_s)
    log.info("serving models %s (default %r)", ", ".join(sorted(paths)), default)
    return Services(settings, database, models, worker, limiter, model_paths=paths)


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
