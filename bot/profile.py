"""What Telegram shows about the bot: the command menus (admins get their commands in theirs), the
description and short description, and a warning at start when inline mode is off.

    await publish(application)        # post_init
    application.add_handler(TypeHandler(Update, before_every_update), group=BEFORE_HANDLERS)
"""

from __future__ import annotations

import logging

from telegram import BotCommand, BotCommandScopeChat, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import Application, ContextTypes

from bot.handlers import chat
from bot.logs import set_log_context
from bot.services import get_services

log = logging.getLogger(__name__)

BEFORE_HANDLERS = -2  # handler group that runs before all others (bot/app.py uses -1 too)
PENDING_MENUS = "admin_menus_pending"  # bot_data key: admins whose command menu is not set yet
# Shown in an empty chat before the user presses Start (at most 512 characters).
DESCRIPTION = ("I continue whatever you write, one character at a time, with a small recurrent neural "
               "network (an LSTM) that learned to write from a single book.\n\n"
               "Press Start, then send me the beginning of a sentence, or try /verse.")
# On the bot's profile and when it is shared (at most 120 characters).
SHORT_DESCRIPTION = "A character-level neural network that continues your text."


def menu(commands: list[tuple[str, str]]) -> list[BotCommand]:
    return [BotCommand(name, about) for name, about in commands]


def public_menu() -> list[BotCommand]:
    """Everyone's command menu (admin commands stay out of it)."""
    return menu(chat.PUBLIC_COMMANDS)


async def publish(application: Application) -> None:
    """Menus, descriptions and the inline-mode check, once at start."""
    bot, services = application.bot, get_services(application)
    await bot.set_my_commands(public_menu())
    pending = application.bot_data[PENDING_MENUS] = set(services.settings.admin_user_ids)
    for admin_id in sorted(pending):
        await set_admin_menu(application, admin_id)
    try:
        await bot.set_my_description(DESCRIPTION)
        await bot.set_my_short_description(SHORT_DESCRIPTION)
    except TelegramError as exc:  # cosmetic: the bot works without them
        log.warning("could not set the bot's description: %s", exc.message)
    if not bot.bot.supports_inline_queries:
        log.warning("@%s has inline mode off, so typing \"@%s text\" in a chat does nothing. Turn it on in "
                    "@BotFather: send /setinline, choose @%s, then send a placeholder such as \"a verse "
                    "beginning with…\"", bot.username, bot.username, bot.username)


async def set_admin_menu(application: Application, admin_id: int) -> None:
    """The public commands plus the admin ones, in this admin's chat only. Telegram refuses a chat
    the admin has not opened yet; their first update to the bot sets it then."""
    services = get_services(application)
    commands = menu(chat.PUBLIC_COMMANDS + chat.admin_commands(services))
    try:
        await application.bot.set_my_commands(commands, scope=BotCommandScopeChat(admin_id))
    except BadRequest as exc:
        log.info("admin %d: command menu not set yet (%s); it is set when they write to the bot",
                 admin_id, exc.message)
        return
    application.bot_data[PENDING_MENUS].discard(admin_id)


async def before_every_update(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Runs before the handlers: log lines name the update, and an admin's menu is set on first contact."""
    set_log_context(update_id=update.update_id)  # the update's own task: its handlers log with it
    user = update.effective_user
    if user is not None and user.id in context.bot_data.get(PENDING_MENUS, ()):
        await set_admin_menu(context.application, user.id)
