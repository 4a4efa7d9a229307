"""The sandbox's Bot API seen through PTB's real HTTP stack: results, updates and Telegram's errors."""

from __future__ import annotations

import asyncio
import datetime as dtm
import time

import aiohttp
import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, Conflict, Forbidden, InvalidToken, RetryAfter, TimedOut

from sandbox.media import tiny_png
from tests.helpers import ALICE, CHANNEL, LOCKED_CHANNEL, bot_texts


async def test_get_me_has_what_ptb_needs(ptb_bot):
    me = await ptb_bot.get_me()
    assert (me.username, me.is_bot, me.supports_inline_queries) == ("rnnbot_sandbox_bot", True, True)
    assert me.id == int(ptb_bot.token.split(":")[0])


async def test_wrong_token_and_unknown_method(sandbox_server):
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{sandbox_server.bot_api_base_url}{sandbox_server.token}/noSuchMethod") as response:
            assert response.status == 404
            assert (await response.json())["description"] == "Not Found: method not found"
    with pytest.raises(InvalidToken):
        async with Bot("123:wrong", base_url=sandbox_server.bot_api_base_url):
            pass


async def test_updates_offsets_and_long_poll(ptb_bot, alice):
    await alice.send_text(ALICE, "first")
    await alice.send_text(ALICE, "/start")
    updates = await ptb_bot.get_updates()
    assert [u.message.text for u in updates] == ["first", "/start"]
    assert updates[1].message.entities[0].type == "bot_command"
    # An offset confirms every update below it; confirmed ones are gone for good.
    assert [u.message.text for u in await ptb_bot.get_updates(offset=updates[1].update_id)] == ["/start"]
    assert await ptb_bot.get_updates(offset=updates[1].update_id + 1) == ()
    assert await ptb_bot.get_updates() == ()

    started = time.monotonic()
    poll = asyncio.create_task(ptb_bot.get_updates(timeout=5))
    await asyncio.sleep(0.2)
    await alice.send_text(ALICE, "late")
    (late,) = await poll
    assert late.message.text == "late" and late.update_id == updates[1].update_id + 1
    assert 0.2 <= time.monotonic() - started < 2

    started = time.monotonic()
    assert await ptb_bot.get_updates(offset=late.update_id + 1, timeout=1) == ()
    assert time.monotonic() - started >= 0.9


async def test_second_concurrent_get_updates_conflicts(ptb_bot, alice, sandbox_server):
    poll = asyncio.create_task(ptb_bot.get_updates(timeout=5))
    await asyncio.sleep(0.2)
    # A second Bot: one Bot queues its own getUpdates calls on a single connection.
    async with Bot(sandbox_server.token, base_url=sandbox_server.bot_api_base_url) as second_instance:
        with pytest.raises(Conflict, match="terminated by other getUpdates request"):
            await second_instance.get_updates(timeout=0)
    await alice.send_text(ALICE, "release the first poll")
    assert len(await poll) == 1


async def test_webhook_blocks_polling(ptb_bot):
    with pytest.raises(BadRequest, match="(?i)https url must be provided"):
        await ptb_bot.set_webhook("http://example.org/hook")
    assert await ptb_bot.set_webhook("https://example.org/hook")
    assert (await ptb_bot.get_webhook_info()).url == "https://example.org/hook"
    with pytest.raises(Conflict, match="webhook is active"):
        await ptb_bot.get_updates()
    assert await ptb_bot.delete_webhook()
    assert await ptb_bot.get_updates() == ()


async def test_commands_round_trip(ptb_bot, alice):
    await ptb_bot.set_my_commands([("start", "Start"), ("temperature", "Set the temperature")])
    assert [c.command for c in await ptb_bot.get_my_commands()] == ["start", "temperature"]
    with pytest.raises(BadRequest, match="Bot_command_invalid"):
        await ptb_bot.set_my_commands([("Bad-Command", "no")])


@pytest.mark.parametrize(("code", "description", "exception"), [
    (400, "Bad Request: chat not found", BadRequest),
    (403, "Forbidden: bot was blocked by the user", Forbidden),
    (409, "", Conflict),
    (429, "", RetryAfter),
])
async def test_injected_faults_raise_ptb_exceptions(ptb_bot, alice, code, description, exception):
    await alice.send_text(ALICE, "hi")
    await alice.inject_fault("sendMessage", code, description, count=2,
                              retry_after=7 if code == 429 else None)
    for _ in range(2):
        with pytest.raises(exception) as raised:
            await ptb_bot.send_message(ALICE, "hello")
    if exception is RetryAfter:
        assert raised.value.retry_after == dtm.timedelta(seconds=7)
    elif description:
        assert description.split(": ", 1)[1].lower() in raised.value.message.lower()
    assert (await ptb_bot.send_message(ALICE, "hello")).text == "hello"  # count used up
    fired = (await alice.faults())["fired"]
    assert [f["code"] for f in fired] == [code, code]


async def test_fault_for_one_chat_and_latency(ptb_bot, alice, sandbox_server):
    await alice.send_text(ALICE, "hi")
    await alice.inject_fault("sendMessage", 403, chat_id=CHANNEL, count=None)
    with pytest.raises(Forbidden):
        await ptb_bot.send_message(CHANNEL, "verse")
    with pytest.raises(Forbidden):
        await ptb_bot.send_message(CHANNEL, "verse")
    assert (await ptb_bot.send_message(ALICE, "fine")).text == "fine"
    await alice.clear_faults()

    await alice.set_latency(0.3, "sendChatAction")
    started = time.monotonic()
    await ptb_bot.send_chat_action(ALICE, "typing")
    assert time.monotonic() - started >= 0.3

    # Late after the fact: the client times out, yet the message is in the chat.
    await alice.set_latency(2, "sendMessage", after=True)
    with pytest.raises(TimedOut):
        await ptb_bot.send_message(ALICE, "arrived anyway", read_timeout=0.2)
    assert bot_texts(await alice.messages(ALICE))[-1] == "arrived anyway"


async def test_text_limits_and_markup_errors(ptb_bot, alice):
    await alice.send_text(ALICE, "hi")
    with pytest.raises(BadRequest, match="an't parse entities: unsupported start tag"):
        await ptb_bot.send_message(ALICE, "1 < 2", parse_mode="HTML")
    with pytest.raises(BadRequest, match="an't parse entities"):
        await ptb_bot.send_message(ALICE, "Tom & Jerry", parse_mode="HTML")
    with pytest.raises(BadRequest, match="reserved and must be escaped"):
        await ptb_bot.send_message(ALICE, "John 3.16", parse_mode="MarkdownV2")
    with pytest.raises(BadRequest, match="an't find end of bold entity"):
        await ptb_bot.send_message(ALICE, "*unclosed", parse_mode="MarkdownV2")
    with pytest.raises(BadRequest, match="Message is too long"):
        await ptb_bot.send_message(ALICE, "x" * 4097)
    with pytest.raises(BadRequest, match="Message text is empty"):
        await ptb_bot.send_message(ALICE, "<b> </b>", parse_mode="HTML")
    assert len((await ptb_bot.send_message(ALICE, "x" * 4096)).text) == 4096
    # The limit counts text after parsing: markup does not use it up.
    sent = await ptb_bot.send_message(ALICE, "<b>" + "y" * 4096 + "</b>", parse_mode="HTML")
    assert sent.entities[0].length == 4096

    html = await ptb_bot.send_message(ALICE, "1 &lt; 2 <b>bold</b> 😀<i>it</i>", parse_mode="HTML")
    assert html.text == "1 < 2 bold 😀it"
    assert [(e.type, e.offset, e.length) for e in html.entities] == [("bold", 6, 4), ("italic", 13, 2)]
    assert html.parse_entity(html.entities[1]) == "it"


async def test_chats_channels_and_reply_errors(ptb_bot, alice):
    with pytest.raises(BadRequest, match="Chat not found"):
        await ptb_bot.send_message(424242, "nobody")
    await alice.set_user(2002, "Bob")
    with pytest.raises(Forbidden, match="can't initiate conversation"):
        await ptb_bot.send_message(2002, "Bob never wrote")
    await alice.send_text(ALICE, "hi")
    with pytest.raises(BadRequest, match="Message to be replied not found"):
        await ptb_bot.send_message(ALICE, "re", reply_to_message_id=999)
    await alice.set_user(ALICE, blocked=True)
    with pytest.raises(Forbidden, match="blocked by the user"):
        await ptb_bot.send_message(ALICE, "blocked")


async def test_channel_feed(ptb_bot, alice, sandbox_server):
    by_name = await ptb_bot.send_message(CHANNEL, "<b>Psalm</b> 23:1", parse_mode="HTML")
    channel_id = by_name.chat.id
    by_id = await ptb_bot.send_message(channel_id, "Psalm 23:2")
    assert by_name.sender_chat.id == channel_id and by_name.from_user is None
    posts = await alice.channel_posts(CHANNEL)
    assert [p["text"] for p in posts] == ["Psalm 23:1", "Psalm 23:2"]
    assert [p["message_id"] for p in posts] == [by_name.message_id, by_id.message_id]
    assert await alice.channel_posts(channel_id) == posts

    with pytest.raises(Forbidden, match="not a member of the channel chat"):
        await ptb_bot.send_message(LOCKED_CHANNEL, "refused")
    assert await alice.channel_posts(LOCKED_CHANNEL) == []
    with pytest.raises(BadRequest, match="Chat not found"):
        await ptb_bot.send_message("@no_such_channel", "refused")

    await alice.add_channel(LOCKED_CHANNEL, bot_is_admin=True)  # the owner promotes the bot
    assert (await ptb_bot.send_message(LOCKED_CHANNEL, "now allowed")).text == "now allowed"


async def test_edits_and_callback_answers(ptb_bot, alice):
    await alice.send_text(ALICE, "hi")
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("Go", callback_data="go")]])
    sent = await ptb_bot.send_message(ALICE, "pick", reply_markup=markup)
    with pytest.raises(BadRequest, match="not modified"):
        await sent.edit_text("pick", reply_markup=markup)
    edited = await sent.edit_text("picked", reply_markup=markup)
    assert edited.text == "picked" and edited.edit_date is not None

    pressed = await alice.press_button((await alice.messages(ALICE))[-1], text="Go")
    (update,) = [u for u in await ptb_bot.get_updates() if u.callback_query]
    assert update.callback_query.data == "go" and update.callback_query.message.text == "picked"
    await update.callback_query.answer("done", show_alert=True)
    answer = await alice.wait_for_callback_answer(pressed["callback_query_id"])
    assert answer["answer"]["show_alert"] is True
    with pytest.raises(BadRequest, match="Query is too old"):
        await update.callback_query.answer("twice")

    with pytest.raises(BadRequest, match="Message to edit not found"):
        await ptb_bot.edit_message_text("x", chat_id=ALICE, message_id=999)
    with pytest.raises(BadRequest, match="can't be edited"):
        await ptb_bot.edit_message_text("x", chat_id=ALICE, message_id=1)  # Alice's own message
    assert await ptb_bot.delete_message(ALICE, sent.message_id)
    assert sent.message_id not in [m["message_id"] for m in await alice.messages(ALICE)]


async def test_send_photo_upload_and_reuse(ptb_bot, alice, sandbox_server):
    await alice.send_text(ALICE, "hi")
    png = tiny_png(4, 3)
    sent = await ptb_bot.send_photo(ALICE, png, caption="<i>Psalm</i> 23", parse_mode="HTML")
    photo = sent.photo[-1]
    assert (photo.width, photo.height, photo.file_size) == (4, 3, len(png))
    assert sent.caption == "Psalm 23" and sent.caption_entities[0].type == "italic"

    stored = (await alice.messages(ALICE))[-1]
    assert stored["photo"][-1]["file_id"] == photo.file_id
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{sandbox_server.url}/sandbox/files/{photo.file_id}") as response:
            assert response.content_type == "image/png" and await response.read() == png
    assert bytes(await (await ptb_bot.get_file(photo.file_id)).download_as_bytearray()) == png

    again = await ptb_bot.send_photo(CHANNEL, photo.file_id)
    assert again.photo[-1].file_id == photo.file_id
    with pytest.raises(BadRequest, match="Image_process_failed"):
        await ptb_bot.send_photo(ALICE, b"not an image")
    with pytest.raises(BadRequest, match="Wrong file identifier"):
        await ptb_bot.send_photo(ALICE, "no-such-file-id")


async def test_chat_info_caption_and_markup_edits(ptb_bot, alice, sandbox_server):
    await alice.send_text(ALICE, "hi")
    channel = await ptb_bot.get_chat(CHANNEL)
    assert (channel.type, channel.username) == ("channel", "rnnbot_verses")
    assert (await ptb_bot.get_chat_member(CHANNEL, ptb_bot.id)).status == "administrator"
    assert (await ptb_bot.get_chat_member(LOCKED_CHANNEL, ptb_bot.id)).status == "left"

    photo = await ptb_bot.send_photo(ALICE, tiny_png(), caption="old")
    assert (await photo.edit_caption("new")).caption == "new"
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("Open", url="https://example.org")]])
    assert (await photo.edit_reply_markup(markup)).reply_markup == markup
    with pytest.raises(BadRequest, match="not modified"):
        await photo.edit_reply_markup(markup)
    with pytest.raises(BadRequest, match="Button_data_invalid"):
        await ptb_bot.send_message(ALICE, "x", reply_markup=InlineKeyboardMarkup(
            [[InlineKeyboardButton("Too long", callback_data="x" * 65)]]))

    # Other clients send JSON bodies or query strings; both work like PTB's form data.
    url = f"{sandbox_server.bot_api_base_url}{sandbox_server.token}/sendMessage"
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json={"chat_id": ALICE, "text": "*json*",
                                           "parse_mode": "MarkdownV2"}) as response:
            sent = (await response.json())["result"]
        async with session.get(url, params={"chat_id": "424242", "text": "x"}) as response:
            refused = await response.json()
    assert sent["entities"] == [{"type": "bold", "offset": 0, "length": 4}]
    assert (response.status, refused) == (400, {"ok": False, "error_code": 400,
                                                "description": "Bad Request: chat not found"})


async def test_command_menus_per_scope_and_descriptions(ptb_bot, alice, sandbox_server):
    from telegram import BotCommandScopeAllPrivateChats, BotCommandScopeChat

    await ptb_bot.set_my_commands([("start", "Start")])
    with pytest.raises(BadRequest, match="Chat not found"):  # a user who never opened the chat
        await ptb_bot.set_my_commands([("stats", "Stats")], scope=BotCommandScopeChat(ALICE))
    await alice.send_text(None, "/start")
    await ptb_bot.set_my_commands([("start", "Start"), ("stats", "Stats")], scope=BotCommandScopeChat(ALICE))
    scoped = await ptb_bot.get_my_commands(scope=BotCommandScopeChat(ALICE))
    assert [c.command for c in scoped] == ["start", "stats"]
    assert [c.command for c in await ptb_bot.get_my_commands()] == ["start"]  # the default is untouched
    state = sandbox_server.state
    assert [c["command"] for c in state.commands_for(ALICE)] == ["start", "stats"]
    assert [c["command"] for c in state.commands_for(999)] == ["start"]  # falls back to the default
    await ptb_bot.set_my_commands([("help", "Help")], scope=BotCommandScopeAllPrivateChats())
    assert [c["command"] for c in state.commands_for(999)] == ["help"]

    assert await ptb_bot.set_my_description("A bot that writes.")
    assert await ptb_bot.set_my_short_description("Writes.")
    assert (await ptb_bot.get_my_description()).description == "A bot that writes."
    assert (await ptb_bot.get_my_short_description(language_code="de")).short_description == "Writes."
    with pytest.raises(BadRequest, match="(?i)short_description_invalid"):
        await ptb_bot.set_my_short_description("x" * 121)
    assert await ptb_bot.set_my_description("")  # removes it
    assert (await ptb_bot.get_my_description()).description == ""


async def test_inline_mode_can_be_off(sandbox_server, ptb_bot, alice):
    from sandbox import SandboxError

    assert (await ptb_bot.get_me()).supports_inline_queries is True
    sandbox_server.sandbox.inline_mode = False
    assert (await ptb_bot.get_me()).supports_inline_queries is False
    with pytest.raises(SandboxError, match="no inline mode"):
        await alice.inline_query(None, "the ")
