"""The sandbox keeps its chats across restarts when given a chats file, and only then."""

from __future__ import annotations

import json

import aiohttp
from telegram import Bot

from sandbox import SandboxClient, SandboxServer
from sandbox.media import tiny_png
from sandbox.persist import ChatKeeper
from tests.helpers import ALICE


async def test_chats_messages_and_photos_survive_a_restart(tmp_path):
    chats_file = tmp_path / "data" / "chats.json"
    async with SandboxServer(port=0, chats_file=chats_file) as server:
        async with SandboxClient(server.url) as alice, \
                Bot(server.token, base_url=server.bot_api_base_url) as bot:
            asked = await alice.send_text(None, "hello there")
            await bot.send_message(ALICE, "<b>hi</b> Alice", parse_mode="HTML", reply_to_message_id=asked["message_id"])
            await bot.send_photo(ALICE, tiny_png(30, 20), caption="a picture")
            await alice.send_text({"id": 1002, "first_name": "Bob"}, "Bob in the group", chat="group")
            before = await alice.messages(ALICE)
            group_before = await alice.messages("group")
    assert json.loads(chats_file.read_text())["format"] == "rnnbot-sandbox-chats/1"

    async with SandboxServer(port=0, chats_file=chats_file) as server:
        async with SandboxClient(server.url) as alice, aiohttp.ClientSession() as http:
            assert await alice.messages(ALICE) == before
            assert await alice.messages("group") == group_before
            assert {u["first_name"] for u in (await alice.state())["users"]} == {"Alice", "Bob"}
            photo = before[-1]["photo"][-1]
            async with http.get(f"{server.url}/sandbox/files/{photo['file_id']}") as response:
                assert await response.read() == tiny_png(30, 20)
            view = await (await http.get(f"{server.url}/sandbox/api/view")).json()
            assert view["result"]["chats_file"] == str(chats_file)
            again = await alice.send_text(None, "I'm back")
            assert again["message_id"] == before[-1]["message_id"] + 1  # ids go on, none reused

            await alice.reset()  # a reset empties the file too
    async with SandboxServer(port=0, chats_file=chats_file) as server, SandboxClient(server.url) as alice:
        assert ALICE not in {c["id"] for c in (await alice.state())["chats"]}
    assert list((tmp_path / "data" / "chats.json.files").iterdir()) == []


async def test_without_a_chats_file_nothing_is_written_and_a_bad_file_is_not_fatal(tmp_path, caplog):
    async with SandboxServer(port=0) as server, SandboxClient(server.url) as alice, aiohttp.ClientSession() as http:
        await alice.send_text(None, "hello")
        view = await (await http.get(f"{server.url}/sandbox/api/view")).json()
        assert view["result"]["chats_file"] is None
    assert list(tmp_path.iterdir()) == []

    broken = tmp_path / "chats.json"
    broken.write_text("{not json")
    async with SandboxServer(port=0, chats_file=broken) as server, SandboxClient(server.url) as alice:
        assert ALICE not in {c["id"] for c in (await alice.state())["chats"]}
        await alice.send_text(None, "a fresh start")
    assert "cannot read" in caplog.text
    assert ChatKeeper(broken).load_into(SandboxServer(port=0).state)  # replaced by a good file


async def test_the_page_has_a_favicon(sandbox_server):
    async with aiohttp.ClientSession() as http, http.get(f"{sandbox_server.url}/favicon.ico") as response:
        assert response.status == 200 and response.content_type == "image/x-icon"
        icon = await response.read()
    assert icon[:6] == b"\x00\x00\x01\x00\x01\x00"  # an .ico with one image...
    assert icon[22:30] == b"\x89PNG\r\n\x1a\n"  # ...a PNG, right after the directory
