"""/schedule and /post_now: the admins' commands for auto-posting (when CHANNEL_ID is set)."""

from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from bot.scheduler.poster import utcnow as _now
from bot.scheduler.slots import slot_key
from bot.services import get_services, require_admin
from db import repositories as repo
from models.errors import RnnbotError

USAGE = ("Change it with /schedule followed by a cron expression in UTC (/schedule 0 */3 * * *) or an "
         "interval (/schedule 90m); /schedule reset goes back to POST_SCHEDULE.")


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
            reply = f"Schedule not changed: {exc}"
        else:
            reply = (f"Schedule is now {schedule.describe()}, from {service.store.source}.\n"
                     f"Next post: {_when(schedule.next_after(_now()))}.")
    await update.effective_message.reply_text(reply)


async def post_now_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/post_now posts a verse to the channel at once and says what went out."""
    if not await require_admin(update, context):
        return
    service = get_services(context).posting
    result = await service.poster.post_now()
    if result.status == "sent":
        reply = f"Posted to {service.poster.channel}:\n{result.text}"
    elif result.status == "taken":
        reply = "Another post took this very second; try again."
    else:
        reply = f"Not posted: {result.error}"
    await update.effective_message.reply_text(reply)


async def describe(context: ContextTypes.DEFAULT_TYPE) -> str:
    """What /schedule shows: channel, schedule and its source, next slot, buffer, the last posts."""
    services = get_services(context)
    service = services.posting
    poster, schedule = service.poster, service.schedule
    lines = [f"Channel: {poster.channel}",
             f"Schedule: {schedule.describe()}, from {service.store.source}",
             *([f"Not used: {service.store.problem}"] if service.store.problem else []),
             f"Next post: {_when(schedule.next_after(_now()))}",
             f"Missed slots are posted up to {poster.misfire_grace_s:g}s late.",
             f"Candidates ready: {len(service.buffer)}"]
    if not service.run_schedule:
        lines.append("Scheduled posts come from a separate `rnnbot scheduler` process (POST_IN_BOT=false).")
    channel_id = poster.known_channel_id
    recent = await services.database.run(lambda s: [(p.slot, p.status, p.error, p.generation and p.generation.text)
                                              for p in repo.recent_posts(s, limit=3, channel_id=channel_id)])
    if recent:
        lines.append("Last posts:")
        for slot, status, error, text in recent:
            detail = text if status == "sent" else (error or "in progress")
            lines.append(f"• {_when(slot)} {status}: {_short(detail)}")
    lines.append(USAGE)
    return "\n".join(lines)


def _when(moment) -> str:
    return "none" if moment is None else slot_key(moment).replace("T", " ").replace("+00:00", " UTC")


def _short(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
