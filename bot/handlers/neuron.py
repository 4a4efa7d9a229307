"""/neuron <text>: a picture of the default model's most interpretable cell firing over the text.

The cell is the one `rnnbot neurons find` saved beside the checkpoint (neurons.json); without
that file it is found once per model on a slice of the model's held-out text, in a thread, and
saved there. Reading the text and drawing the PNG run in a thread too, never on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass

from telegram import Update
from telegram.constants import ChatAction
from telegram.ext import Application, CommandHandler, ContextTypes

from bot.handlers.generation import rate_limit_message, unknown_chars_note
from bot.services import get_services
from models.errors import RnnbotError
from models.generator import Generator
from neurons.activations import default_value, record
from neurons.features import DESCRIPTIONS
from neurons.find import find_cells, load_findings, save_findings
from neurons.heldout import held_out_text
from neurons.png import render_png

log = logging.getLogger(__name__)

MAX_CHARS = 800  # one photo: 60 columns by a few dozen rows
COLUMNS = 60
HELD_OUT_CHARS = 20_000  # enough to rank cells, a few seconds on a CPU
ARGUMENT = re.compile(r"\A/\S+\s?(.*)\Z", re.DOTALL)  # "/neuron@bot text" -> "text", newlines kept
USAGE = ("Send /neuron and some text, for example\n/neuron 1:1 In the beginning God created the heaven "
         "and the earth.\nI draw the text with each character coloured by what one cell of my network "
         "does while reading it (red +1, white 0, blue -1), the cell that best tracks something about "
         "the text. Reply /neuron to a message to use its text.")


@dataclass(frozen=True)
class Cell:
    layer: int
    cell: int
    value: str  # tanh_c or h
    about: str  # what it tracks, for the caption


def choose_cell(generator: Generator) -> Cell | None:
    """The model's most interpretable cell (saved, or found now on held-out text); None if no
    held-out text is available (the picture then uses the cell that varies most over the text)."""
    ckpt = generator.checkpoint
    findings = load_findings(ckpt.path, ckpt.step) if ckpt is not None and ckpt.path else None
    if findings is None and ckpt is not None and ckpt.path:
        try:
            text, source, code = held_out_text(ckpt, None, HELD_OUT_CHARS)
        except RnnbotError as exc:
            log.warning("no held-out text to find cells for %s: %s", generator.name, exc)
            return None
        findings, _, _ = find_cells(generator, text, code, source=source)
        save_findings(findings, ckpt.path)
    best = findings.showcase() if findings else None
    if best is None:
        return None
    return Cell(best.best.layer, best.best.cell, findings.value,
                f"{DESCRIPTIONS[best.feature]} (correlation {best.best.correlation:+.2f} on held-out text)")


def draw(generator: Generator, text: str, cell: Cell | None) -> tuple[bytes, str]:
    """(PNG, caption) of `cell` over `text`."""
    acts = record(generator, text)
    if cell is None:
        value = default_value(generator)
        spread = acts.values(value).std(axis=0)  # (L, H)
        layer, unit = divmod(int(spread.argmax()), acts.hidden)
        cell = Cell(layer, unit, value, "the cell that varies most over your text")
    values = acts.cell(cell.layer, cell.cell, cell.value)
    caption = f"Layer {cell.layer}, cell {cell.cell} ({cell.value}): {cell.about}. Red +1, white 0, blue -1."
    return render_png(text, values, COLUMNS), caption


async def cell_for(context: ContextTypes.DEFAULT_TYPE, generator: Generator) -> Cell | None:
    """choose_cell, once per model and checkpoint step (concurrent requests wait for the first)."""
    cache = context.bot_data.setdefault("neuron_cells", {})
    lock = context.bot_data.setdefault("neuron_lock", asyncio.Lock())
    key = (generator.name, generator.checkpoint.step if generator.checkpoint else 0)
    async with lock:
        if key not in cache:
            cache[key] = await asyncio.to_thread(choose_cell, generator)
    return cache[key]


async def neuron(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Reply with a PNG of the most interpretable cell firing over the given text."""
    message = update.effective_message
    match = ARGUMENT.match(message.text or "")
    text = match.group(1).strip("\n") if match else ""
    if not text.strip() and message.reply_to_message is not None:
        text = message.reply_to_message.text or message.reply_to_message.caption or ""
    if not text.strip():
        await message.reply_text(USAGE)
        return
    services = get_services(context)
    refusal = rate_limit_message(services, update.effective_user.id)
    if refusal:
        await message.reply_text(refusal)
        return
    shortened = len(text) > MAX_CHARS
    text = text[:MAX_CHARS]
    await update.effective_chat.send_action(ChatAction.UPLOAD_PHOTO)
    generator = services.models.get(None)
    cell = await cell_for(context, generator)
    png, caption = await asyncio.to_thread(draw, generator, text, cell)
    notes = [unknown_chars_note(generator.vocab.unknown_chars(text)),
             f"(Only the first {MAX_CHARS} characters.)" if shortened else None]
    caption = " ".join([caption, *(n for n in notes if n)])[:1024]
    await message.reply_photo(png, caption=caption)


def register(application: Application) -> None:
    application.add_handler(CommandHandler("neuron", neuron))
