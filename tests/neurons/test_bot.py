"""/neuron through the real bot (bot/app.py wiring) and the sandbox's Bot API over HTTP, using
the bot tests' fixtures (tests/bot/conftest.py)."""

from __future__ import annotations

import asyncio
import shutil
import threading

import aiohttp
import pytest

from bot.handlers.generation import BUSY
from bot.handlers.neuron import COLUMNS
from neurons.find import load_findings
from neurons.png import png_size
from tests.helpers import ALICE, png_dimensions, wait_until


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


async def test_neuron_has_its_own_bounded_queue_and_says_busy_when_it_is_full(start_bot, sandbox_server, run_copy):
    """A crowd of /neuron requests: each gets a picture or "busy", and a plain completion sent
    meanwhile is answered (drawing does not take the threads database calls need)."""
    from sandbox import SandboxClient

    await start_bot(model_path=run_copy, heavy_workers=1, heavy_queue_size=1)
    crowd = [SandboxClient(sandbox_server.url, user_id=5000 + n, first_name=f"User{n}") for n in range(8)]
    try:
        asks = [asyncio.create_task(user.ask(None, f"/neuron ab cd {n}", timeout=90)) for n, user in enumerate(crowd)]
        async with SandboxClient(sandbox_server.url, user_id=ALICE, first_name="Alice") as alice:
            completion = await alice.ask(None, "ab cd ", timeout=60)
        answers = await asyncio.gather(*asks)
    finally:
        for user in crowd:
            await user.close()
    assert completion["text"].startswith("ab cd ")
    busy = [a for a in answers if "photo" not in a]
    assert busy and all("busy" in a["text"] for a in busy)
    assert len(busy) < len(answers)  # the ones that fit were drawn


async def test_heavy_work_holding_every_heavy_thread_leaves_completions_alone(start_bot, alice, run_copy):
    harness = await start_bot(model_path=run_copy, heavy_workers=2, heavy_queue_size=1)
    heavy, release = harness.services.heavy, threading.Event()
    held = [asyncio.create_task(heavy.run(release.wait)) for _ in range(3)]  # both threads and the queue
    await wait_until(lambda: heavy.full, what="the heavy queue full")
    try:
        assert (await alice.ask(None, "/neuron ab cd"))["text"] == BUSY
        assert (await alice.ask(None, "ab cd "))["text"].startswith("ab cd ")  # database calls and the model
        assert (await alice.ask(None, "/settings"))["text"].startswith("Your settings")
    finally:
        release.set()
        await asyncio.gather(*held)
    assert "photo" in await alice.ask(None, "/neuron ab cd", timeout=60)
