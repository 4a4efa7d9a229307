"""/settings buttons, /temperature, /length, /model, /history, /forget, inline mode."""

from __future__ import annotations

from tests.helpers import ALICE, BOB, wait_until


def buttons(message: dict) -> list[tuple[str, str]]:
    return [(b["text"], b.get("callback_data")) for row in message["reply_markup"]["inline_keyboard"] for b in row]


async def test_settings_buttons_change_settings_and_edit_the_message(running_bot, alice):
    menu = await alice.ask(None, "/settings")
    assert "Temperature: 0.8" in menu["text"] and "Length: 40 characters" in menu["text"]
    assert ("✓ 0.8", "settings:temperature:0.8") in buttons(menu)

    pressed = await alice.press_button(menu, data="settings:temperature:1.2")
    answer = await alice.wait_for_callback_answer(pressed["callback_query_id"])
    assert answer["answer"]["text"] == "Temperature set to 1.2"
    edited = await alice.wait_for_edit(menu)
    assert "Temperature: 1.2" in edited["text"]
    assert ("✓ 1.2", "settings:temperature:1.2") in buttons(edited)
    await running_bot.settled()
    assert running_bot.user(ALICE).temperature == 1.2

    pressed = await alice.press_button(edited, data="settings:length:100")
    edited = await alice.wait_for_edit(edited, predicate=lambda m: "Length: 100" in m["text"])
    await running_bot.settled()
    assert running_bot.user(ALICE).length == 100

    # pressing the current value changes nothing and does not try a no-op edit
    pressed = await alice.press_button(edited, data="settings:length:100")
    answer = await alice.wait_for_callback_answer(pressed["callback_query_id"])
    assert answer["answer"]["text"].startswith("No change")

    reply = await alice.ask(None, "the lazy ")
    await running_bot.settled()
    [served] = running_bot.prompts(ALICE)[0].completions
    assert (served.temperature, served.max_chars, len(reply["text"])) == (1.2, 100, len("the lazy ") + 100)
    assert not [c for c in await alice.calls("editMessageText") if not c["ok"]]


async def test_temperature_length_and_model_commands(running_bot, alice):
    assert (await alice.ask(None, "/temperature 0.3"))["text"] == "Temperature set to 0.3."
    refused = (await alice.ask(None, "/temperature 5"))["text"]
    assert refused.startswith("5 is out of range, so I kept your temperature. Your temperature is 0.3.")
    assert "from 0 to 2" in refused
    assert (await alice.ask(None, "/temperature hot"))["text"].startswith("hot is not a number, so I kept")
    assert (await alice.ask(None, "/temperature"))["text"].startswith("Your temperature is 0.3.")
    assert running_bot.user(ALICE).temperature == 0.3
    refused = (await alice.ask(None, "/length lots"))["text"]
    assert refused.startswith("lots is not a length from 1 to 1000, so I kept yours.")
    assert (await alice.ask(None, "/length 12"))["text"] == "Length set to 12 characters."
    await running_bot.settled()
    user = running_bot.user(ALICE)
    assert (user.temperature, user.length) == (0.3, 12)

    default = running_bot.services.models.default
    listing = (await alice.ask(None, "/model"))["text"]
    assert f"{default} (default, yours)" in listing
    assert "no loaded model called nope" in (await alice.ask(None, "/model nope"))["text"]
    assert (await alice.ask(None, f"/model {default}"))["text"] == f"Model set to {default}."
    await running_bot.settled()
    assert running_bot.user(ALICE).model_name == default


async def test_history_and_forget_with_confirmation(running_bot, alice):
    await alice.ask(None, "the quick ")
    await alice.ask(None, "/temperature 1.1")
    await alice.ask({"id": BOB, "first_name": "Bob"}, "Bob was here ")  # someone else's data stays
    history = await alice.ask(None, "/history")
    [stored] = running_bot.prompts(ALICE)
    when = stored.created_at.strftime("%d %b %H:%M UTC")
    assert history["text"].startswith(f"Your last prompt\n\nthe quick \n{when} · temperature 0.8 · up to 40 chars")
    assert "Bob" not in history["text"]

    question = await alice.ask(None, "/forget")
    assert "Are you sure?" in question["text"]
    # Bob cannot confirm Alice's /forget
    pressed = await alice.press_button(question, data=f"forget:yes:{ALICE}", user={"id": BOB, "first_name": "Bob"})
    answer = await alice.wait_for_callback_answer(pressed["callback_query_id"])
    await running_bot.settled()
    assert answer["answer"]["show_alert"] and running_bot.user(ALICE) is not None

    await alice.press_button(question, data=f"forget:yes:{ALICE}")
    done = await alice.wait_for_edit(question)
    assert done["text"].startswith("Done: I deleted 1 prompt, 1 completion and")
    await running_bot.settled()
    assert running_bot.user(ALICE) is None and running_bot.prompts(ALICE) == []
    assert len(running_bot.prompts(BOB)) == 1 and running_bot.user(BOB) is not None
    assert (await alice.ask(None, "/history"))["text"].startswith("Nothing here yet")


async def test_forget_can_be_cancelled(running_bot, alice):
    await alice.ask(None, "the quick ")
    question = await alice.ask(None, "/forget")
    await alice.press_button(question, data=f"forget:no:{ALICE}")
    assert (await alice.wait_for_edit(question))["text"] == "OK, I kept everything."
    await running_bot.settled()
    assert len(running_bot.prompts(ALICE)) == 1


async def test_inline_query_offers_three_temperatures(running_bot, alice):
    query_id = await alice.inline_query(None, "the lazy <dog> & ")
    answer = await alice.wait_for_inline_answer(query_id)
    assert [r["title"] for r in answer["results"]] == ["Temperature 0.5", "Temperature 0.8", "Temperature 1.1"]
    assert answer["cache_time"] == 0

    posted = await alice.choose_inline_result(None, query_id, "1")
    assert posted["text"].startswith("the lazy <dog> & ")
    assert posted["entities"][0] == {"type": "bold", "offset": 0, "length": len("the lazy <dog> & ")}
    await running_bot.settled()
    [stored] = running_bot.prompts(ALICE)
    assert stored.chat_id is None  # inline mode has no chat
    assert sorted(c.temperature for c in stored.completions) == [0.5, 0.8, 1.1]
    assert posted["text"].rstrip().endswith(stored.completions[1].text.rstrip())


async def test_empty_inline_query_gets_a_hint(running_bot, alice):
    answer = await alice.wait_for_inline_answer(await alice.inline_query(None, ""))
    assert answer["results"] == [] and answer["button"]["text"] == "Type the beginning of a sentence"
    await wait_until(lambda: running_bot.counts()["prompts"] == 0, what="no prompt stored")
