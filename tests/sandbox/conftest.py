"""Sandbox fixtures: a real server on a free port, a real PTB Bot and a small real PTB Application."""

from __future__ import annotations

import asyncio
import datetime as dtm

import pytest
from telegram import (Bot, InlineKeyboardButton, InlineKeyboardMarkup, InlineQueryResultArticle,
                      InputTextMessageContent, Update)
from telegram.constants import ChatAction
from telegram.ext import (Application, ApplicationBuilder, CallbackQueryHandler, CommandHandler,
                          ContextTypes, InlineQueryHandler, MessageHandler, filters)

from sandbox import ChannelSpec, SandboxClient, SandboxServer

ALICE = 1001  # SandboxClient's default user; her private chat has the same id
CHANNEL = "@rnnbot_verses"
LOCKED_CHANNEL = "@not_admin_channel"


@pytest.fixture
async def server():
    channels = [CHANNEL, ChannelSpec(username=LOCKED_CHANNEL, bot_is_admin=False)]
    async with SandboxServer(port=0, channels=channels) as running:
        yield running


@pytest.fixture
async def client(server):
    async with SandboxClient(server.url) as alice:
        yield alice


@pytest.fixture
async def bot(server):
    async with Bot(server.token, base_url=server.bot_api_base_url,
                   base_file_url=server.bot_api_base_file_url) as real_bot:
        yield real_bot


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Offer temperature buttons."""
    keyboard = [[InlineKeyboardButton("Temperature 0.5", callback_data="temp:0.5"),
                 InlineKeyboardButton("Temperature 1.0", callback_data="temp:1.0")]]
    await update.effective_message.reply_text("Choose a temperature:",
                                              reply_markup=InlineKeyboardMarkup(keyboard))


async def slow(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Show "typing…" for a while, like the generation worker does."""
    await update.effective_chat.send_action(ChatAction.TYPING)
    await asyncio.sleep(1.5)
    await update.effective_message.reply_text("done thinking")


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Repeat the text."""
    await update.effective_chat.send_action(ChatAction.TYPING)
    await update.effective_message.reply_text(f"echo: {update.effective_message.text}")


async def choose(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Answer the button press and edit the message."""
    query = update.callback_query
    value = query.data.split(":", 1)[1]
    await query.answer(f"set {value}")
    await query.edit_message_text(f"Temperature set to {value}")


async def inline(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Three verses for any query."""
    text = update.inline_query.query or "verse"
    results = [InlineQueryResultArticle(id=str(n), title=f"{text} {n}",
                                        input_message_content=InputTextMessageContent(
                                            f"<b>{text}</b> {n}:1", parse_mode="HTML"))
               for n in (1, 2, 3)]
    await update.inline_query.answer(results, cache_time=0)


def build_test_app(server: SandboxServer, errors: list) -> Application:
    async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        errors.append(context.error)

    app = (ApplicationBuilder().token(server.token).base_url(server.bot_api_base_url)
           .base_file_url(server.bot_api_base_file_url).build())
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CommandHandler("slow", slow))
    app.add_handler(CallbackQueryHandler(choose, pattern=r"^temp:"))
    app.add_handler(InlineQueryHandler(inline))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND & ~filters.VIA_BOT, echo))
    app.add_error_handler(on_error)
    return app


@pytest.fixture
async def app_errors() -> list:
    return []


@pytest.fixture
async def running_app(server, app_errors):
    """The PTB Application polling the sandbox, embedded as in ecosystem-notes.md."""
    app = build_test_app(server, app_errors)
    async with app:
        await app.start()
        await app.updater.start_polling(poll_interval=0.0, timeout=dtm.timedelta(seconds=1))
        yield app
        await app.updater.stop()
        await app.stop()
