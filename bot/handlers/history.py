"""What the bot keeps about a user: /history shows it, /forget deletes it (after a confirm button)."""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.ext import ContextTypes

from bot import records
from bot.services import get_services
from db import repositories as repo

HISTORY_ITEMS = 5
SNIPPET_CHARS = 300
CALLBACK_PATTERN = r"^forget:"
UNANSWERED = {"busy": "I was busy", "failed": "my reply did not reach you"}


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    return html.escape(text if len(text) <= limit else text[: limit - 1] + "…", quote=False)


@dataclass(frozen=True)
class Entry:
    """One /history item: what the user asked for, when, and what they got with which settings."""

    asked: str
    at: datetime
    inline: bool
    completions: list[str]
    temperatures: list[float]
    max_chars: int | None
    model: str | None
    outcome: str  # sent, busy or failed (db/models.py Prompt.outcome)


def entry_html(entry: Entry) -> str:
    shown = entry.completions[0] if entry.completions else ""
    more = f" <i>(+{len(entry.completions) - 1} more)</i>" if len(entry.completions) > 1 else ""
    details = [entry.at.strftime("%d %b %H:%M UTC")] + (["inline"] if entry.inline else [])
    if entry.temperatures:
        details.append("temperature " + "/".join(f"{t:g}" for t in dict.fromkeys(entry.temperatures)))
    if entry.max_chars:
        details.append(f"up to {entry.max_chars} chars")
    if entry.model:
        details.append(html.escape(entry.model, quote=False))
    answer = snippet(shown) if shown else f"<i>({UNANSWERED.get(entry.outcome, 'no completion')})</i>"
    return f"\n<b>{snippet(entry.asked, 120)}</b>\n<i>{' · '.join(details)}</i>\n{answer}{more}"


async def history(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The user's last completions, newest first: what they asked for, when, with which settings."""
    services, user_id = get_services(context), update.effective_user.id

    def load(session) -> list[Entry]:
        return [Entry(p.text, p.created_at, p.chat_id is None, [c.text for c in p.completions],
                      [c.temperature for c in p.completions],
                      p.completions[0].max_chars if p.completions else None,
                      p.completions[0].model_name if p.completions else None, p.outcome)
                for p in repo.user_prompts(session, user_id=user_id, limit=HISTORY_ITEMS)]

    items = await services.database.run(load)
    if not items:
        await update.effective_message.reply_text("Nothing here yet: send me some text to continue.")
        return
    lines = ["<b>Your last prompt</b>" if len(items) == 1 else f"<b>Your last {len(items)} prompts</b>"]
    lines += [entry_html(entry) for entry in items]
    await update.effective_message.reply_text("\n".join(lines), parse_mode=ParseMode.HTML)


async def forget(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Ask before deleting everything stored about the user."""
    user_id = update.effective_user.id
    keyboard = InlineKeyboardMarkup([[
        InlineKeyboardButton("Yes, delete everything", callback_data=f"forget:yes:{user_id}"),
        InlineKeyboardButton("No, keep it", callback_data=f"forget:no:{user_id}"),
    ]])
    await update.effective_message.reply_text(
        "This deletes everything I have stored about you: your prompts, my completions and your settings. "
        "Are you sure?", reply_markup=keyboard)


async def forget_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The confirm (or cancel) button under /forget's question."""
    services, query = get_services(context), update.callback_query
    _, choice, owner = (query.data.split(":", 2) + ["", ""])[:3]
    if choice not in ("yes", "no") or not owner:  # not a button /forget made: a modified client
        await query.answer("That button is no longer valid.", show_alert=True)
        return
    if str(query.from_user.id) != owner:
        await query.answer("Only the person who asked can press this.", show_alert=True)
        return
    if choice != "yes":
        await query.answer("Nothing was deleted.")
        await query.edit_message_text("OK, I kept everything.")
        return
    user_id = query.from_user.id
    # Requests of theirs still waiting for the database (a past outage) are forgotten too, first.
    await services.outbox.discard(lambda w: w.kind == records.EXCHANGE and w.data["user_id"] == user_id)
    deleted = await services.database.run(lambda session: repo.forget_user(session, user_id=user_id))
    await query.answer("Deleted.")
    await query.edit_message_text(
        f"Done: I deleted {plural(deleted['prompts'], 'prompt')}, {plural(deleted['completions'], 'completion')} "
        "and your settings.")
