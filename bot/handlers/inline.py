"""Inline mode: `@bot some prompt` in any chat offers three completions at different temperatures.

Each completion counts against the user's rate limit: a query takes three of the allowance, and
with fewer left it offers fewer (the lowest temperatures first)."""

from __future__ import annotations

import logging

from telegram import InlineQueryResultArticle, InlineQueryResultsButton, InputTextMessageContent, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest
from telegram.ext import ContextTypes

from bot.handlers.generation import Request, serve
from bot.services import get_services
from bot.text import render_html

log = logging.getLogger(__name__)

TEMPERATURES = (0.5, 0.8, 1.1)
MAX_CHARS = 400  # inline results are previews: the user's length, but at most this
DESCRIPTION_CHARS = 120


async def answer_with_hint(update: Update, hint: str) -> None:
    """No results, just a button above the (empty) list saying why."""
    button = InlineQueryResultsButton(text=hint, start_parameter="inline")
    await update.inline_query.answer([], cache_time=0, is_personal=True, button=button)


async def inline_query(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Three completions of the query, one per temperature."""
    services, query = get_services(context), update.inline_query
    prompt = query.query[-services.settings.max_prompt_chars:]
    if not prompt.strip():
        await answer_with_hint(update, "Type the beginning of a sentence")
        return
    granted = services.limiter.take(query.from_user.id, len(TEMPERATURES))
    if not granted:
        await answer_with_hint(update, "Too many requests: try again in a moment")
        return
    async def reply(result) -> None:
        results = []
        for n, (completion, temperature) in enumerate(zip(result.completions, result.temperatures)):
            message = render_html([(prompt, True), (completion.text, False)])[0]
            description = completion.text.strip().replace("\n", " ")[:DESCRIPTION_CHARS] or "(nothing)"
            results.append(InlineQueryResultArticle(
                id=str(n), title=f"Temperature {temperature:g}", description=description,
                input_message_content=InputTextMessageContent(message, parse_mode=ParseMode.HTML)))
        await query.answer(results, cache_time=0, is_personal=True)

    async def busy(_: str) -> None:
        await answer_with_hint(update, "Busy right now: try again in a few seconds")

    request = Request(query.from_user, None, prompt, length_cap=MAX_CHARS, temperatures=TEMPERATURES[:granted])
    try:
        await serve(services, request, reply, busy)
    except BadRequest as exc:  # the user typed on and Telegram dropped this query (recorded as failed)
        if "query is too old" not in str(exc):
            raise
        log.info("inline query expired before its answer was ready")
