"""/neuron through the real bot (bot/app.py wiring) and the sandbox's Bot API over HTTP, using
the bot tests' fixtures (tests/bot/conftest.py)."""

from __future__ import annotations

import shutil

import aiohttp
import pytest

from bot.handlers.neuron import COLUMNS
from neurons.find import load_findings
from neurons.png import png_size
from tests.helpers import ALICE, png_dimensions


@pytest.fixture
def run_copy(quotes_run, tmp_path):
    """A private copy of the quotes model: the bot saves neurons.json beside it."""
    return shutil.copytree(quotes_run, tmp_path / "quotes_run")


async def test_neuron_replies_with_a_picture_of_the_quote_cell(start_bot, alice, sandbox_server, run_copy):
    harness = await start_bot(model_path=run_copy)
    usage = await alice.ask(None, "/neuron")
    assert usage["text"].startswith("Send /neuron and some text")

    text = 'ab cd "tuv wxy" fe.\ngg "zz'
    reply = await alice.ask(None, f"/neuron {text}", timeout=60)
    photo = reply["photo"][-1]
    assert (photo["width"], photo["height"]) == png_size(text, COLUMNS)
    assert "inside double quotes" in reply["caption"]
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{sandbox_server.url}/sandbox/files/{photo['file_id']}") as response:
            assert png_dimensions(await response.read()) == png_size(text, COLUMNS)
    assert "upload_photo" in [a["action"] for a in await alice.chat_actions(ALICE)]

    # The cell was found once, on the model's held-out text, and saved beside the checkpoint.
    ckpt = harness.services.models.get(None).checkpoint
    assert load_findings(ckpt.path, ckpt.step).showcase().feature == "in_quotes"
    # No quotes in this text: the quote cell would be one flat colour, so another saved cell is
    # chosen, one whose feature changes here, and the caption says which feature that is.
    again = await alice.ask(None, "/neuron ab <b>&", timeout=30)
    assert "inside double quotes" not in again["caption"]
    assert again["caption"].split(": ", 1)[1].startswith(("position in the line", "position in the word"))
    assert "never seen < > &" in again["caption"]  # a plain-text caption: nothing to escape


async def test_neuron_counts_against_the_rate_limit(start_bot, alice, run_copy):
    await start_bot(model_path=run_copy, rate_limit_count=1)
    assert "photo" in await alice.ask(None, "/neuron ab cd", timeout=60)
    refused = await alice.ask(None, "/neuron ab cd")
    assert "photo" not in refused and refused["text"].startswith("Easy there!")
