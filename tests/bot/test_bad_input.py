"""Hostile and broken input through the real bot: every class gets a specific answer, never "Sorry",
and nothing the user typed reaches the log. docs/bad-input.md lists the classes."""

from __future__ import annotations

import logging
import time

import pytest

from bot.handlers.errors import SORRY
from tests.helpers import ALICE, CHANNEL, bot_texts

LONE_SURROGATE = "\ud800"


@pytest.fixture
def quiet_log(caplog):
    """Everything the bot logs; at the end, no failed update and no user text in it."""
    caplog.set_level(logging.DEBUG)
    typed: list[str] = []
    yield typed
    logged = caplog.text + "".join(r.exc_text or "" for r in caplog.records)
    assert "handling update" not in logged, logged
    for text in typed:
        assert text not in logged


@pytest.mark.parametrize("command, expected", [
    ("/length ²", "give a whole number from 1 to 1000"),  # str.isdigit() says yes, int() says no
    ("/length ١٢", "give a whole number from 1 to 1000"),  # Arabic-Indic digits
    ("/length 99999999999999999999999", "give a whole number from 1 to 1000"),
    ("/temperature nan", "give a number from 0 to 2"),
    ("/temperature 1e999", "give a number from 0 to 2"),
    ("/model " + "m" * 4089, "There is no loaded model called mmmm"),  # the reply would be too long
])
async def test_bad_arguments_get_a_specific_answer(running_bot, alice, quiet_log, command, expected):
    quiet_log.append(command.split(" ", 1)[1])
    reply = (await alice.ask(None, command, timeout=30))["text"]
    assert expected in reply and reply != SORRY and len(reply) <= 4096


async def test_a_lone_surrogate_in_a_prompt_is_answered_and_stored_cleaned(running_bot, alice, quiet_log):
    # JSON can carry "\ud800"; UTF-8 cannot encode it, so echoing it back would fail.
    prompt = f"the quick {LONE_SURROGATE} fox "
    reply = (await alice.ask(None, prompt, timeout=30))["text"]
    assert reply.startswith("the quick \ufffd fox ")
    await running_bot.settled()
    assert running_bot.prompts(ALICE)[0].text == "the quick \ufffd fox "
    answer = await alice.wait_for_inline_answer(await alice.inline_query(None, prompt))
    assert answer["results"] and "\ufffd" in answer["results"][0]["input_message_content"]["message_text"]
    assert "photo" in await alice.ask(None, f"/neuron ab {LONE_SURROGATE}", timeout=60)
    assert (await alice.ask(None, "the\x00 lazy "))["text"].startswith("the lazy ")  # NULs: dropped


async def test_admin_inputs_that_cannot_be_used(start_bot, admin_client, quiet_log):
    await start_bot(channel_id=CHANNEL, post_in_bot=False, post_corpus="none")
    for expression in ("99999999999999999999d", "3000000d", "x" * 5000):
        reply = (await admin_client.ask(None, f"/schedule {expression}"))["text"]
        assert reply.startswith("Schedule not changed: ") and len(reply) < 1000


async def test_forged_buttons_are_answered(running_bot, alice, quiet_log):
    settings = await alice.ask(None, "/settings")
    for data in ("settings:length:²", "settings:temperature:nan", "settings:length:" + "9" * 40, "settings:"):
        pressed = await alice.press_button(settings, data=data, forge=True)
        answer = await alice.wait_for_callback_answer(pressed["callback_query_id"])
        assert answer["answer"]["text"] == "That option is no longer available; send /settings again."
    question = await alice.ask(None, "/forget")
    for data in ("forget:yes", "forget:", "forget:yes:not-a-number", f"forget:yes:{ALICE + 1}"):
        pressed = await alice.press_button(question, data=data, forge=True)
        answer = await alice.wait_for_callback_answer(pressed["callback_query_id"])
        assert answer["answer"]["text"] in ("That button is no longer valid.",
                                            "Only the person who asked can press this.")
    await running_bot.settled()
    assert running_bot.user(ALICE) is not None  # nothing was deleted


async def test_an_update_without_a_sender_is_answered(running_bot, alice, admin_client, quiet_log):
    await alice.ask(None, "/start")  # the private chat exists
    texts = ("/start", "/length 5", "/forget", "the quick ", "/stats")
    for n, text in enumerate(texts, 1):
        message = {"message_id": 10_000 + n, "date": int(time.time()), "text": text,
                   "chat": {"id": ALICE, "type": "private", "first_name": "Alice"}}
        if text.startswith("/"):
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        await alice.raw_update("message", message)
        await alice.wait_for_messages(ALICE, lambda m: "no sender" in m.get("text", ""), count=n)
    assert SORRY not in bot_texts(await alice.messages(ALICE))
    await running_bot.settled()
    assert running_bot.counts()["prompts"] == 0
