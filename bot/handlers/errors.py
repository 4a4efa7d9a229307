"""The error handler: log the failure (never the token or the user's text), tell the user briefly."""

from __future__ import annotations

import logging
import traceback
from contextlib import suppress

from telegram import Update
from telegram.error import Forbidden, NetworkError, TelegramError
from telegram.ext import ContextTypes

from db.session import unavailable_reason

log = logging.getLogger(__name__)

SORRY = "Sorry, something went wrong on my side. Please try again."
DATABASE_DOWN = "Sorry, my database is unavailable right now, so I could not do that. Please try again in a minute."


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log the exception, then apologise in the chat where it happened (if there is one)."""
    error = context.error
    if isinstance(update, Update):
        # The update id, not the update, and the traceback without exception messages: both can
        # quote the user's text (int() quotes what it could not read).
        log.error("handling update %s failed: %s\n%s", update.update_id, type(error).__name__, without_messages(error))
    elif isinstance(error, NetworkError):  # polling hiccups: PTB retries on its own
        log.warning("Bot API request failed: %s", error)
        return
    else:
        log.error("background task failed: %s", type(error).__name__, exc_info=error)
        return
    reply = DATABASE_DOWN if unavailable_reason(error) is not None else SORRY
    if update.callback_query is not None:  # else the button spins until Telegram gives up
        with suppress(TelegramError):
            await update.callback_query.answer(reply, show_alert=True)
        return
    chat = update.effective_chat
    if isinstance(error, Forbidden) or chat is None:  # blocked by the user, or an inline query
        return
    with suppress(TelegramError):
        await context.bot.send_message(chat.id, reply)


def without_messages(error: BaseException) -> str:
    """The traceback (and its causes) with each exception's type and frames, not its message."""
    parts = []
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        frames = "".join(traceback.format_tb(error.__traceback__))
        parts.append(f"{frames}{type(error).__module__}.{type(error).__qualname__}")
        error = error.__cause__ or error.__context__
    return "\n(caused by)\n".join(reversed(parts))
