"""Admin-only commands (ADMIN_USER_IDS): /stats and /reload. Everyone else gets a polite refusal."""

from __future__ import annotations

import asyncio
import html
import logging
import time

from telegram import Update
from telegram.constants import ParseMode
from telegram.ext import ContextTypes

from bot.services import Services, get_services, require_admin, resolve_models
from db import repositories as repo
from models.errors import RnnbotError

__all__ = ["require_admin", "stats", "reload"]

log = logging.getLogger(__name__)


def describe_model(services: Services, name: str) -> str:
    checkpoint = services.models.get(name).checkpoint
    parts = [html.escape(name)]
    if checkpoint is not None:
        bpc = checkpoint.metrics.get("val_bpc")
        parts.append(f"step {checkpoint.step:,}" + (f", val {bpc:.3f} bpc" if bpc is not None else ""))
        if checkpoint.path is not None:
            parts.append(html.escape(str(checkpoint.path)))
    return " · ".join(parts)


def uptime(seconds: float) -> str:
    minutes, _ = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h {minutes}m" if days else f"{hours}h {minutes}m"


async def stats(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Rows per table, the generation worker's numbers, the loaded models."""
    if not await require_admin(update, context):
        return
    services = get_services(context)
    counts = await services.database.run(repo.table_counts)
    worker = services.worker
    lines = ["<b>Database</b> (" + html.escape(services.database.url.get_backend_name()) + ")",
             *(f"{table}: {rows:,}" for table, rows in counts.items()), "",
             "<b>Generation worker</b>",
             f"queued now: {worker.pending} of {services.settings.queue_size}",
             f"batches run: {worker.batches:,}, largest batch: {worker.largest_batch}", "",
             "<b>Models</b>",
             *(describe_model(services, name) + (" (default)" if name == services.models.default else "")
               for name in services.models.names()), "",
             f"Up for {uptime(time.time() - services.started_at)}."]
    await update.effective_message.reply_text("\n".join(lines), parse_mode=ParseMode.HTML)


async def reload(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Load the newest checkpoints (MODEL_PATH and the registry's active models) without a restart."""
    if not await require_admin(update, context):
        return
    services = get_services(context)
    message = update.effective_message
    if services.reload_lock.locked():
        await message.reply_text("A reload is already running.")
        return
    async with services.reload_lock:
        try:
            # Loading reads the checkpoint files: in a thread, while the worker keeps serving the old models.
            paths, default = await asyncio.to_thread(resolve_models, services.settings, services.database)
            await asyncio.to_thread(services.models.replace, paths, default)
        except RnnbotError as exc:
            log.warning("reload failed: %s", exc)
            await message.reply_text(f"Reload failed, still serving the old models: {html.escape(str(exc))}",
                                     parse_mode=ParseMode.HTML)
            return
        services.model_paths = paths
    lines = ["Reloaded:", *(f"• {describe_model(services, name)}" + (" (default)" if name == default else "")
                            for name in sorted(paths))]
    await message.reply_text("\n".join(lines), parse_mode=ParseMode.HTML)
