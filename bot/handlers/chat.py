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
from bot.lexicons import lexicon_for
from bot.services import get_services
from bot.text import render_html
from models.generator import Completion, Generator

VERSE_MAX_CHARS = 600  # the longest KJV verse (Esther 8:9) is 528 characters
VERSE_CANDIDATES = 4  # /verse samples this many lines and shows the best (see choose_verse)
SENTENCE_END = re.compile(r".*[.!?;:]")
ECHO_CHARS = 200  # the reply repeats at most this much of the prompt before the completion
# Characters people send to make a message look empty (Telegram refuses whitespace alone).
INVISIBLE = set("\u2800\u3164\u115f\u1160\uffa0\u200b\u200c\u200d\u2060\ufeff")

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
    text = update.effective_message.text or ""
    if is_blank(text):
        await update.effective_message.reply_text(
            "There is nothing to continue in that message. Send me the beginning of a sentence, "
            "e.g. In the beginning")
        return
    await complete_and_reply(update, context, text)


async def unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A command this bot does not have, in a private chat: point to /help."""
    command = (update.effective_message.text or "").split(None, 1)[0].split("@", 1)[0]
    await update.effective_message.reply_text(f"I don't know {command}. Send /help for the commands I know.")


def is_blank(text: str) -> bool:
    """Nothing but whitespace and the invisible characters that pass for it."""
    return all(ch.isspace() or ch in INVISIBLE for ch in text)


def echo(prompt: str, limit: int = ECHO_CHARS) -> str:
    """What a reply repeats of the prompt: its last line, at most `limit` characters of its end,
    with "…" where something was left out (the user has the rest in their own message)."""
    body = prompt.rstrip("\n")
    start = body.rfind("\n") + 1
    if len(prompt) - start > limit:
        start = len(prompt) - limit
    return prompt if start == 0 else "…" + prompt[start:]


async def complete_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/complete PROMPT: continue PROMPT (works in groups too)."""
    parts = (update.effective_message.text or "").split(None, 1)  # keeps the prompt's own line breaks
    await complete_and_reply(update, context, parts[1] if len(parts) > 1 else "")


async def complete_and_reply(update: Update, context: ContextTypes.DEFAULT_TYPE, prompt: str) -> None:
    services = get_services(context)
    message, limit = update.effective_message, services.settings.max_prompt_chars
    if is_blank(prompt):
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
        await reply_html(message, render_html([(echo(prompt), True), (completion.text, False)]))
        notes.append(unknown_chars_note(completion.unknown_chars))
        if any(notes):
            await message.reply_text(italic(" ".join(n for n in notes if n)), parse_mode=ParseMode.HTML)

    async with typing(update.effective_chat):
        await serve(services, Request(update.effective_user, update.effective_chat, prompt), reply,
                    message.reply_text)


def choose_verse(completions: list[Completion], generator: Generator, max_unknown_words: int) -> int:
    """The candidate to show: within POST_MAX_UNKNOWN_WORDS invented words (as posts are), then a
    finished line, then the fewest invented words; the first such."""
    lexicon = lexicon_for(generator) if max_unknown_words >= 0 else None

    def rank(i: int) -> tuple:
        unknown = len(lexicon.unknown(completions[i].text)) if lexicon is not None else 0
        return unknown > max_unknown_words, completions[i].finish_reason != "stop", unknown, i

    return min(range(len(completions)), key=rank)


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
    max_unknown = services.settings.post_max_unknown_words
    request = Request(update.effective_user, update.effective_chat, "/verse", model_input=prefix,
                      completion_prefix=prefix, after_start_context=True, stop_at="\n", max_chars=VERSE_MAX_CHARS,
                      candidates=VERSE_CANDIDATES,
                      pick=lambda found, generator: choose_verse(found, generator, max_unknown))

    async def reply(result) -> None:
        completion = result.completions[0]
        line = verse_line(prefix, completion.text, completion.finish_reason == "stop")
        await message.reply_text(html.escape(line, quote=False), parse_mode=ParseMode.HTML)

    async with typing(update.effective_chat):
        await serve(services, request, reply, message.reply_text)
