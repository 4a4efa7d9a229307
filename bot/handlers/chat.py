"""Talking to the bot: /start, /help, text to complete (/complete or any text in a private chat), /verse."""

from __future__ import annotations

import html
import random
import re

from telegram import Update
from telegram.constants import ParseMode
from telegram.ext import ContextTypes

from bot.handlers.generation import (
    Request,
    italic,
    reply_html,
    serve,
    typing,
    unknown_chars_note,
    within_rate_limit,
)
from bot.services import get_services
from bot.text import render_html

VERSE_MAX_CHARS = 600  # the longest KJV verse (Esther 8:9) is 528 characters
SENTENCE_END = re.compile(r".*[.!?;:]")

# (command, what it does) in the order /help and Telegram's command menu show them.
PUBLIC_COMMANDS = [
    ("start", "what this bot does"),
    ("help", "all commands"),
    ("complete", "continue your text: /complete In the beginning"),
    ("verse", "a freshly generated verse"),
    ("settings", "temperature, length and model, with buttons"),
    ("temperature", "set the temperature: /temperature 0.7"),
    ("length", "set the completion length: /length 400"),
    ("model", "list the models, or switch: /model NAME"),
    ("history", "your last completions"),
    ("forget", "delete everything stored about you"),
    ("neuron", "see one cell of the network fire over your text"),
]
ADMIN_COMMANDS = [
    ("stats", "database rows and worker statistics"),
    ("reload", "load the newest active checkpoint without a restart"),
]
POSTING_COMMANDS = [  # when CHANNEL_ID is set
    ("post_now", "post a generated verse to the channel now"),
    ("schedule", "show the posting schedule"),
]


def admin_commands(services) -> list[tuple[str, str]]:
    return ADMIN_COMMANDS + (POSTING_COMMANDS if services.posting is not None else [])


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Greet the user and say how to use the bot."""
    name = html.escape(update.effective_user.first_name if update.effective_user else "there")
    await update.effective_message.reply_text(
        f"Hello, {name}! I am a small neural network that writes one character at a time.\n\n"
        "Send me the beginning of a sentence and I will continue it. /verse gives you a fresh verse, "
        "/settings changes how adventurous I am, and /help lists everything else.",
        parse_mode=ParseMode.HTML)


async def help_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """List the commands (and the admin ones for admins)."""
    services = get_services(context)
    lines = ["Send me any text in this chat and I will continue it.", "",
             *(f"/{name} — {html.escape(about)}" for name, about in PUBLIC_COMMANDS), "",
             f"Inline: type @{context.bot.username} and a prompt in any chat for three completions."]
    if services.is_admin(update.effective_user.id if update.effective_user else None):
        lines += ["", "<b>Admin</b>",
                  *(f"/{name} — {html.escape(about)}" for name, about in admin_commands(services))]
    await update.effective_message.reply_text("\n".join(lines), parse_mode=ParseMode.HTML)


async def complete_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Continue the text of a private-chat message."""
    await complete_and_reply(update, context, update.effective_message.text or "")


async def complete_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/complete PROMPT: continue PROMPT (works in groups too)."""
    parts = (update.effective_message.text or "").split(None, 1)  # keeps the prompt's own line breaks
    await complete_and_reply(update, context, parts[1] if len(parts) > 1 else "")


async def complete_and_reply(update: Update, context: ContextTypes.DEFAULT_TYPE, prompt: str) -> None:
    services = get_services(context)
    message, limit = update.effective_message, services.settings.max_prompt_chars
    if not prompt.strip():
        await message.reply_text("Give me something to continue, e.g. /complete In the beginning")
        return
    notes = []
    if len(prompt) > limit:
        notes.append(f"Your text was {len(prompt):,} characters long; I read only the last {limit:,}.")
        prompt = prompt[-limit:]  # the end is what the next characters depend on
    if not await within_rate_limit(services, update):
        return

    async def reply(result) -> None:
        completion = result.completions[0]
        await reply_html(message, render_html([(prompt, True), (completion.text, False)]))
        notes.append(unknown_chars_note(completion.unknown_chars))
        if any(notes):
            await message.reply_text(italic(" ".join(n for n in notes if n)), parse_mode=ParseMode.HTML)

    async with typing(update.effective_chat):
        await serve(services, Request(update.effective_user, update.effective_chat, prompt), reply,
                    message.reply_text)


def verse_line(prefix: str, text: str, finished: bool) -> str:
    """`chapter:verse text` on one line; a verse cut off by the length limit ends at its last sentence."""
    line = (prefix + text).strip()
    if not finished:
        sentence = SENTENCE_END.match(line)
        if sentence and len(sentence.group()) > len(prefix) + 1:
            line = sentence.group()
    return line


async def verse(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A fresh `chapter:verse text` line, like the channel's posts."""
    services = get_services(context)
    message = update.effective_message
    if not await within_rate_limit(services, update):
        return
    # Primed at a line start with a verse number, the model writes the rest of a verse line.
    prefix = f"{random.randint(1, 50)}:{random.randint(1, 40)} "
    request = Request(update.effective_user, update.effective_chat, prefix, model_input=prefix,
                      after_start_context=True, stop_at="\n", max_chars=VERSE_MAX_CHARS)

    async def reply(result) -> None:
        completion = result.completions[0]
        line = verse_line(prefix, completion.text, completion.finish_reason == "stop")
        await message.reply_text(html.escape(line, quote=False), parse_mode=ParseMode.HTML)

    async with typing(update.effective_chat):
        await serve(services, request, reply, message.reply_text)
