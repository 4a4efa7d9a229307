"""Updates no handler can serve, stopped before the handlers see them."""

from __future__ import annotations

from telegram import Update
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop, ContextTypes

NO_SENDER = ("I can only answer messages that come from a person's account, and this one has no sender. "
             "Please write to me from your own account.")
ANSWERED_CHATS = (ChatType.PRIVATE, ChatType.GROUP, ChatType.SUPERGROUP)


async def require_sender(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Every handler serves a user: an update without one (a forged or broken one, a channel post)
    stops here, with a short answer where a person may be reading, never in a channel."""
    if update.effective_user is not None:
        return
    chat = update.effective_chat
    if update.message is not None and chat is not None and chat.type in ANSWERED_CHATS:
        try:
            await context.bot.send_message(chat.id, NO_SENDER)
        except TelegramError:
            pass  # nobody to tell
    raise ApplicationHandlerStop
