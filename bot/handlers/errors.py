"""The error handler: log the failure (never the token or the user's text), tell the user briefly."""

from __future__ import annotations

import logging
from contextlib import suppress

from telegram import Update
from telegram.error import Forbidden, NetworkError, TelegramError
from telegram.ext import ContextTypes

log = logging.getLogger(__name__)

SORRY = "Sorry, something went wrong on my side. Please try again."


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log the exception, then apologise in the chat where it happened (if there is one)."""
    error = context.error
    if isinstance(update, Update):
        # The update id, not the update: it holds the user's text.
        log.error("handling update %s failed: %s", update.update_id, type(error).__name__, exc_info=error)
    elif isinstance(error, NetworkError):  # polling hiccups: PTB retries on its own
        log.warning("Bot API request failed: %s", error)
        return
    else:
        log.error("background task failed: %s", type(error).__name__, exc_info=error)
        return
    chat = update.effective_chat
    if isinstance(error, Forbidden) or chat is None:  # blocked by the user, or an inline query
        return
    with suppress(TelegramError):
        await context.bot.send_message(chat.id, SORRY)
