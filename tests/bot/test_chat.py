"""Talking to the real bot through the sandbox: /start, completions, /complete, /verse, odd prompts."""

from __future__ import annotations

import time

from bot.handlers.chat import ECHO_CHARS, VERSE_MAX_CHARS
from bot.scheduler.candidates import VERSE
from tests.helpers import ALICE, PERIODIC, bot_texts, wait_until


async def test_start_and_help(running_bot, alice, admin_client):
    greeting = await alice.ask(None, "/start")
    assert greeting["text"].startswith("Hello, Alice!")
    help_text = (await alice.ask(None, "/help"))["text"]
    for command in ("/complete", "/verse", "/settings", "/history", "/forget", "@rnnbot_sandbox_bot"):
        assert command in help_text
    assert "/stats" not in help_text  # admin commands are listed for admins only
    assert "/stats" in (await admin_client.ask(None, "/help"))["text"]
    menu = (await alice.view())["commands"]  # hers; the admin's own menu is tests/bot/test_profile.py's
    assert "complete" in str(menu) and "stats" not in str(menu)


async def test_private_text_is_completed_and_stored(start_bot, alice):
    running_bot = await start_bot(default_temperature=0.0)  # argmax: the text the model learned
    prompt = "the quick brown "
    asked = time.perf_counter()
    reply = await alice.ask(None, prompt)
    round_trip_ms = (time.perf_counter() - asked) * 1000
    # The prompt in bold, then the model's continuation: the periodic text it learned.
    assert reply["entities"][0] == {"type": "bold", "offset": 0, "length": len(prompt)}
    completion = reply["text"][len(prompt):]
    assert len(completion) == running_bot.settings.default_length
    assert completion in PERIODIC * 3  # the tiny model has learned its corpus
    assert [a["action"] for a in await alice.chat_actions(ALICE)][:1] == ["typing"]

    await running_bot.settled()
    [stored] = running_bot.prompts(ALICE)
    assert stored.text == prompt and stored.chat_id == ALICE
    [served] = stored.completions
    assert served.text == completion
    # the time to generate it, measured by the bot: some, and within what the user waited
    assert served.latency_ms is not None and 0 < served.latency_ms <= round_trip_ms
    assert served.temperature == running_bot.settings.default_temperature
    assert served.max_chars == running_bot.settings.default_length
    assert served.model_name == running_bot.services.models.default


async def test_complete_command_in_the_group(running_bot, alice, sandbox_server):
    sent = await alice.send_text(None, f"/complete@{sandbox_server.bot_username} lazy dog", chat="group")
    reply = await alice.wait_for_bot_reply(sent["chat"]["id"], after=sent)
    assert reply["text"].startswith("lazy dog")
    assert reply["reply_to_message"]["message_id"] == sent["message_id"]  # quoted in groups
    # plain text in the group is not for the bot
    other = await alice.send_text(None, "just chatting", chat="group")
    await alice.ask(None, "/start")  # a round trip in another chat: the bot has seen the group text by now
    assert all(m["message_id"] < other["message_id"] for m in await alice.messages(sent["chat"]["id"])
               if m.get("from", {}).get("is_bot"))
    await running_bot.settled()
    assert running_bot.prompts(ALICE)[0].chat_id == sent["chat"]["id"]


async def test_empty_prompt_gets_usage(running_bot, alice):
    for text in ("/complete", "/complete    ", "/complete \n \n"):
        reply = await alice.ask(None, text)
        assert reply["text"].startswith("Give me something to continue")
    await running_bot.settled()
    assert running_bot.counts()["prompts"] == 0


async def test_html_looking_prompt_is_escaped(running_bot, alice):
    prompt = "<b>bold</b> & <script>x</script> *star* "
    reply = await alice.ask(None, prompt)  # the sandbox refuses bad HTML, so a reply means it was escaped
    assert reply["text"].startswith(prompt)
    assert reply["entities"][0]["length"] == len(prompt)


async def test_emoji_prompt_is_answered_with_a_note(running_bot, alice):
    prompt = "the lazy 🐕 jumps 🦊"
    sent = await alice.send_text(None, prompt)
    replies = await alice.wait_for_messages(ALICE, lambda m: m.get("from", {}).get("is_bot")
                                            and m["message_id"] > sent["message_id"], count=2)
    assert replies[0]["text"].startswith(prompt) and len(replies[0]["text"]) > len(prompt)
    assert "never seen 🐕 🦊" in replies[1]["text"] and "unknown characters" in replies[1]["text"]
    await running_bot.settled()
    assert running_bot.prompts(ALICE)[0].text == prompt


async def test_ten_thousand_character_prompt_is_cut_to_its_end(running_bot, alice):
    limit = running_bot.settings.max_prompt_chars
    prompt = "a" * 5000 + "the lazy dog " * 400  # 10,200 characters
    sent = await alice.send_text(None, prompt)
    note = await alice.wait_for_bot_reply(ALICE, after=sent, predicate=lambda m: "I read only" in m["text"])
    assert f"{len(prompt):,} characters" in note["text"] and f"last {limit:,}" in note["text"]
    replies = [m for m in await alice.messages(ALICE) if m["from"]["is_bot"]]
    assert len(replies) == 2  # the end of the prompt and its completion, then the note
    echoed = "…" + prompt[-ECHO_CHARS:]
    assert replies[0]["text"].startswith(echoed)
    assert replies[0]["entities"][0] == {"type": "bold", "offset": 0, "length": len(echoed)}
    await running_bot.settled()
    [stored] = running_bot.prompts(ALICE)
    assert stored.text == prompt[-limit:] and len(stored.completions) == 1
    assert replies[0]["text"] == echoed + stored.completions[0].text


async def test_a_reply_repeats_only_the_last_line_of_the_prompt(running_bot, alice):
    prompt = "Genesis, chapter one.\nthe lazy dog jumps over the quick brown fox.\nthe quick brown "
    reply = await alice.ask(None, prompt)
    assert reply["text"].startswith("…the quick brown ")
    assert reply["entities"][0] == {"type": "bold", "offset": 0, "length": len("…the quick brown ")}
    await running_bot.settled()
    assert running_bot.prompts(ALICE)[0].text == prompt  # the whole prompt was read and kept


async def test_unknown_commands_get_a_pointer_to_help_in_private_chats_only(running_bot, alice, sandbox_server):
    reply = await alice.ask(None, "/frobnicate now")
    assert reply["text"] == "I don't know /frobnicate. Send /help for the commands I know."
    sent = await alice.send_text(None, f"/frobnicate@{sandbox_server.bot_username}", chat="group")
    await alice.ask(None, "/start")  # a round trip in another chat: the bot has seen the group command by now
    assert not [m for m in await alice.messages(sent["chat"]["id"]) if m.get("from", {}).get("is_bot")]
    assert running_bot.counts()["prompts"] == 0


async def test_a_message_with_nothing_visible_gets_a_hint(running_bot, alice):
    reply = await alice.ask(None, "\u2800 \u200b\u3164")  # what clients send for an "empty" message
    assert reply["text"].startswith("There is nothing to continue in that message.")
    assert running_bot.counts()["prompts"] == 0


async def test_verse_is_one_chapter_verse_line(start_bot, alice):
    running_bot = await start_bot(default_temperature=0.0)
    reply = await alice.ask(None, "/verse")
    line = reply["text"]
    assert "\n" not in line
    assert VERSE.match(line), line
    await running_bot.settled()
    await wait_until(lambda: running_bot.counts()["completions"] == 1, what="the stored completion")
    [stored] = running_bot.prompts(ALICE)
    assert stored.text == "/verse"  # what the user asked for; the verse number is part of the answer
    assert VERSE.match(stored.completions[0].text) and line.startswith(stored.completions[0].text.split()[0])
    history = (await alice.ask(None, "/history"))["text"]
    assert history.startswith("Your last prompt\n\n/verse\n")
    assert f"temperature 0 · up to {VERSE_MAX_CHARS} chars" in history
    assert line.split()[0] in history


def test_verse_shows_a_candidate_without_invented_words(trained_run):
    """/verse samples a few lines and shows the first one whose words are all the corpus's."""
    from bot.handlers.chat import choose_verse
    from models.generator import Completion, Generator

    generator = Generator.load(trained_run)  # trained on the periodic "quick brown fox" corpus
    found = [Completion("", "the quick brwn fox jumps", "stop"),
             Completion("", "the quick brown fox jumps over", "length"),
             Completion("", "the lazy dog jumps over the fox", "stop"),
             Completion("", "the dog", "stop")]
    assert choose_verse(found, generator, max_unknown_words=0) == 2  # finished and every word known
    assert choose_verse(found[:2], generator, max_unknown_words=0) == 1  # unfinished beats an invented word
    assert choose_verse(found[:2], generator, max_unknown_words=1) == 0  # one invented word allowed
    assert choose_verse(found[:2], generator, max_unknown_words=-1) == 0  # no check: the first finished line


async def test_an_edited_command_or_prompt_is_not_run_again(running_bot, alice):
    """Editing a message is not asking again: only new messages are prompts and commands."""
    for text, edited in (("/complete the quick ", "/complete the lazy "), ("/verse", "/verse"),
                         ("the dog ", "the cat ")):
        sent = await alice.send_text(None, text)
        await alice.wait_for_bot_reply(ALICE, after=sent)
        await alice.edit_text(sent, edited)
    # Delivered after the edits; a completion, so it queues behind anything they started.
    last = await alice.ask(None, "/complete the end ", timeout=30)
    assert last["text"].startswith("the end ")
    await wait_until(lambda: running_bot.services.worker.pending == 0, what="an idle worker")
    replies = bot_texts(await alice.messages(ALICE))
    assert len(replies) == 4 and not [r for r in replies if r.startswith(("the lazy", "the cat"))]
    await running_bot.settled()
    assert len(running_bot.prompts(ALICE)) == 4
