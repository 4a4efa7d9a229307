"""A real PTB Application against the sandbox: commands, buttons, inline queries, faults."""

from __future__ import annotations

from telegram.error import Forbidden

from tests.helpers import ALICE, CHANNEL


async def test_command_gets_keyboard_and_button_edits_message(running_app, alice, app_errors):
    menu = await alice.ask(ALICE, "/start")
    assert menu["text"] == "Choose a temperature:"
    buttons = [b["text"] for b in menu["reply_markup"]["inline_keyboard"][0]]
    assert buttons == ["Temperature 0.5", "Temperature 1.0"]

    pressed = await alice.press_button(menu, data="temp:0.5")
    answer = await alice.wait_for_callback_answer(pressed["callback_query_id"])
    assert answer["answer"]["text"] == "set 0.5"
    edited = await alice.wait_for_edit(menu)
    assert edited["text"] == "Temperature set to 0.5"
    assert "reply_markup" not in edited  # editMessageText without markup drops the keyboard
    assert app_errors == []


async def test_echo_with_typing_action(running_app, alice):
    reply = await alice.ask(ALICE, "hello sandbox")
    assert reply["text"] == "echo: hello sandbox"
    assert [a["action"] for a in await alice.chat_actions(ALICE)] == ["typing"]


async def test_command_addressed_to_the_bot_in_the_group(running_app, alice, sandbox_server):
    sent = await alice.send_text(ALICE, f"/start@{sandbox_server.bot_username}", chat="group")
    assert sent["entities"][0] == {"type": "bot_command", "offset": 0,
                                   "length": len(sent["text"])}
    reply = await alice.wait_for_bot_reply(sent["chat"]["id"], after=sent)
    assert reply["chat"]["type"] == "supergroup"
    assert reply["text"] == "Choose a temperature:"


async def test_inline_query_answered_with_three_results(running_app, alice):
    query_id = await alice.inline_query(ALICE, "psalm")
    answer = await alice.wait_for_inline_answer(query_id)
    assert [r["title"] for r in answer["results"]] == ["psalm 1", "psalm 2", "psalm 3"]

    posted = await alice.choose_inline_result(ALICE, query_id, "2")
    assert posted["text"] == "psalm 2:1"
    assert posted["entities"] == [{"type": "bold", "offset": 0, "length": 5}]
    assert posted["via_bot"]["username"] == "rnnbot_sandbox_bot"


async def test_injected_fault_reaches_the_error_handler(running_app, alice, app_errors):
    await alice.inject_fault("sendMessage", 403, "Forbidden: bot was blocked by the user")
    first = await alice.send_text(ALICE, "are you there?")
    second = await alice.ask(ALICE, "and now?")
    assert second["text"] == "echo: and now?"
    assert len(app_errors) == 1 and isinstance(app_errors[0], Forbidden)
    replies = [m["text"] for m in await alice.messages(ALICE) if m.get("from", {}).get("is_bot")]
    assert replies == ["echo: and now?"]  # the refused reply to `first` was never stored
    assert first["text"] == "are you there?"


async def test_every_call_of_a_normal_session_succeeds(running_app, alice):
    await alice.ask(ALICE, "one")
    await alice.ask(ALICE, "/start")
    methods = {c["method"] for c in await alice.calls()}
    assert {"getMe", "deleteWebhook", "getUpdates", "sendMessage", "sendChatAction"} <= methods
    assert [c for c in await alice.calls() if not c["ok"]] == []
    assert await alice.channel_posts(CHANNEL) == []
