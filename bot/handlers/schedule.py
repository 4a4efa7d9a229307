"""/schedule and /post_now: the admins' commands for auto-posting (when CHANNEL_ID is set)."""

from __future__ import annotations

import html
import re

from telegram import Update
from telegram.constants import ParseMode
from telegram.ext import ContextTypes

from bot.scheduler.poster import utcnow as _now
from bot.scheduler.slots import slot_key
from bot.services import get_services, require_admin
from db import repositories as repo
from models.errors import RnnbotError

# Replies are HTML with cron text in <code>: in plain text, the "/3" of "0 */3 * * *" is a command link.
USAGE = ("Change it with /schedule followed by a cron expression in UTC (<code>/schedule 0 */3 * * *</code>) or "
         "an interval (<code>/schedule 90m</code>); <code>/schedule reset</code> goes back to POST_SCHEDULE.")
QUOTED = re.compile(r"'([^'\n]*)'")


def code_quoted(text: str) -> str:
    """Escaped HTML of `text` with each 'quoted' part (cron expressions, values) in <code>."""
    return QUOTED.sub(r"<code>\1</code>", html.escape(text, quote=False))


def schedule_html(schedule) -> str:
    if schedule.interval is not None:
        return f"every <code>{html.escape(schedule.expression)}</code> (UTC-aligned)"
    return f"cron <code>{html.escape(schedule.expression)}</code> (UTC)"


async def schedule_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/schedule shows the schedule; /schedule <cron or interval> changes it; /schedule reset."""
    if not await require_admin(update, context):
        return
    service = get_services(context).posting
    expression = " ".join(context.args or [])
    if not expression:
        reply = await describe(context)
    else:
        try:
            if expression.lower() == "reset":
                schedule = await service.reset_schedule()
            else:
                schedule = await service.set_schedule(expression, changed_by=update.effective_user.id)
        except RnnbotError as exc:
            reply = f"Schedule not changed: {code_quoted(str(exc))}"
        else:
            reply = (f"Schedule is now {schedule_html(schedule)}, from {html.escape(service.store.source)}.\n"
                     f"Next post: {_when(schedule.next_after(_now()))}.")
    await update.effective_message.reply_text(reply, parse_mode=ParseMode.HTML)


async def post_now_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/post_now posts a verse to the channel at once and says what went out."""
    if not await require_admin(update, context):
        return
    service = get_services(context).posting
    result = await service.poster.post_now()
    if result.status == "sent":
        reply = f"Posted to {html.escape(str(service.poster.channel))}:\n{html.escape(result.text, quote=False)}"
    elif result.status == "taken":
        reply = "Another post took this very second; try again."
    else:
        reply = f"Not posted: {code_quoted(str(result.error))}"
    await update.effective_message.reply_text(reply, parse_mode=ParseMode.HTML)


async def describe(context: ContextTypes.DEFAULT_TYPE) -> str:
    """What /schedule shows: channel, schedule and its source, next slot, buffer, the last posts."""
    services = get_services(context)
    service = services.posting
    poster, schedule = service.poster, service.schedule
    lines = [f"Channel: {html.escape(str(poster.channel))}",
             f"Schedule: {schedule_html(schedule)}, from {html.escape(service.store.source)}",
             *([f"Not used: {html.escape(service.store.problem, quote=False)}"] if service.store.problem else []),
             f"Next post: {_when(schedule.next_after(_now()))}",
             f"Missed slots are posted up to {poster.misfire_grace_s:g}s late.",
             f"Candidates ready: {len(service.buffer)}"]
    if not service.run_schedule:
        lines.append("Scheduled posts come from a separate <code>rnnbot scheduler</code> process (POST_IN_BOT=false).")
    channel_id = poster.known_channel_id
    recent = await services.database.run(lambda s: [(p.slot, p.status, p.error, p.generation and p.generation.text)
                                              for p in repo.recent_posts(s, limit=3, channel_id=channel_id)])
    if recent:
        lines.append("Last posts:")
        for slot, status, error, text in recent:
            detail = text if status == "sent" else (error or "in progress")
            lines.append(f"• {_when(slot)} {status}: {html.escape(_short(detail), quote=False)}")
    lines.append(USAGE)
    return "\n".join(lines)


def _when(moment) -> str:
    return "none" if moment is None else slot_key(moment).replace("T", " ").replace("+00:00", " UTC")


def _short(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
