"""/neuron <text>: a picture of one of the default model's cells firing over the text.

The cell is chosen for the text (neurons/choose.py) among those `rnnbot neurons find` saved beside
the checkpoint (neurons.json); without that file they are found once per model on a slice of the
model's held-out text, and saved there. Finding the cells, reading the text and drawing the PNG
run on the bot's heavy-work threads (bot/heavy.py), never on the event loop nor on the threads
database calls use; when their queue is full the user is told the bot is busy.
"""

from __future__ import annotations

import asyncio
import logging
import re

from telegram import Update
from telegram.constants import ChatAction
from telegram.ext import ContextTypes

from bot.handlers.generation import BUSY, unknown_chars_note, within_rate_limit
from bot.heavy import Busy
from bot.services import get_services
from models.generator import Generator
from neurons.activations import default_value, record
from neurons.choose import cell_for_text, model_findings
from neurons.find import Findings
from neurons.png import render_png

log = logging.getLogger(__name__)

MAX_CHARS = 800  # one photo: 40 columns by at most a few dozen rows
COLUMNS = 40  # narrow enough to read on a phone once the picture is scaled to its width
HELD_OUT_CHARS = 20_000  # enough to rank cells, a few seconds on a CPU
ARGUMENT = re.compile(r"\A/\S+\s?(.*)\Z", re.DOTALL)  # "/neuron@bot text" -> "text", newlines kept
USAGE = ("Send /neuron and some text, for example\n/neuron 1:1 In the beginning God created the heaven "
         "and the earth.\nI draw the text with each character coloured by what one cell of my network "
         "does while reading it (red +1, white 0, blue -1), the cell that best tracks something about "
         "the text. Reply /neuron to a message to use its text.")


def draw(generator: Generator, text: str, findings: Findings | None) -> tuple[bytes, str]:
    """(PNG, caption) of the cell chosen for `text` among `findings`' cells."""
    acts = record(generator, text)
    cell = cell_for_text(findings, acts, findings.value if findings else default_value(generator))
    values = acts.cell(cell.layer, cell.cell, cell.value)
    caption = f"Layer {cell.layer}, cell {cell.cell} ({cell.value}): {cell.about}. Red +1, white 0, blue -1."
    return render_png(text, values, COLUMNS), caption


async def findings_for(context: ContextTypes.DEFAULT_TYPE, generator: Generator) -> Findings | None:
    """model_findings, once per model and checkpoint step (concurrent requests wait for the first)."""
    cache = context.bot_data.setdefault("neuron_findings", {})
    lock = context.bot_data.setdefault("neuron_lock", asyncio.Lock())
    key = (generator.name, generator.checkpoint.step if generator.checkpoint else 0)
    async with lock:
        if key not in cache:
            heavy = get_services(context).heavy
            cache[key] = await heavy.run(model_findings, generator, HELD_OUT_CHARS, wait=True)
    return cache[key]


async def neuron(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Reply with a PNG of a cell that tracks something in the given text, firing over it."""
    message = update.effective_message
    match = ARGUMENT.match(message.text or "")
    text = match.group(1).strip("\n") if match else ""
    if not text.strip() and message.reply_to_message is not None:
        text = message.reply_to_message.text or message.reply_to_message.caption or ""
    if not text.strip():
        await message.reply_text(USAGE)
        return
    services = get_services(context)
    if not await within_rate_limit(services, update, completion=False):
        return
    shortened = len(text) > MAX_CHARS
    text = text[:MAX_CHARS]
    generator = services.models.get(None)
    try:
        if services.heavy.full:
            raise Busy  # before waiting for the cells: a full queue answers at once
        await update.effective_chat.send_action(ChatAction.UPLOAD_PHOTO)
        findings = await findings_for(context, generator)
        png, caption = await services.heavy.run(draw, generator, text, findings)
    except Busy:
        await message.reply_text(BUSY)
        return
    notes = [unknown_chars_note(generator.vocab.unknown_chars(text)),
             f"(Only the first {MAX_CHARS} characters.)" if shortened else None]
    caption = " ".join([caption, *(n for n in notes if n)])[:1024]
    await message.reply_photo(png, caption=caption)
