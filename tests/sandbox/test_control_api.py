"""The control API and server lifecycle: faults bookkeeping, reset, the page's long poll, restarts."""

from __future__ import annotations

import asyncio
import datetime as dtm

import aiohttp
import pytest

from sandbox import FaultInjector, SandboxClient, SandboxError, SandboxServer, run_sandbox
from tests.fixtures.sandbox import build_test_app
from tests.helpers import ALICE


def test_fault_counts_and_wildcards():
    faults = FaultInjector()
    faults.add("sendMessage", 429, count=2, retry_after=3)
    forever = faults.add("*", 500, count=None, chat_id="@verses")
    assert faults.take("getMe") is None
    first = faults.take("SENDMESSAGE")
    assert (first.code, first.retry_after, first.description) == (
        429, 3, "Too Many Requests: retry after 3")
    assert faults.take("sendMessage").code == 429
    assert faults.take("sendMessage") is None
    assert faults.take("sendPhoto", "@verses") is forever and forever.fired == 1
    assert [f.code for f in faults.fired] == [429, 429, 500]
    with pytest.raises(ValueError):
        faults.add("getMe", 400, count=0)


async def test_control_api_errors_and_reset(sandbox_server, alice, ptb_bot):
    with pytest.raises(SandboxError, match="only to their private chat or the group"):
        await alice.send_text(ALICE, "hi", chat="@rnnbot_verses")
    sent = await alice.send_text(ALICE, "hi")
    with pytest.raises(SandboxError, match="has no button"):
        await alice.press_button(sent, data="nope")
    await alice.inject_fault("getMe", 500)
    await alice.reset()
    state = await alice.state()
    assert state["users"] == [] and state["pending_updates"] == 0
    assert state["faults"]["faults"] == []
    assert [c["username"] for c in state["chats"] if c["type"] == "channel"] == [
        "rnnbot_verses", "not_admin_channel"]
    assert (await ptb_bot.get_me()).username == "rnnbot_sandbox_bot"


async def test_view_long_poll_wakes_on_change(sandbox_server, alice):
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{sandbox_server.url}/sandbox/api/view") as response:
            view = (await response.json())["result"]
        assert view["messages"] == [] and view["channels"][0]["username"] == "rnnbot_verses"

        async def next_view():
            params = {"since": view["version"], "wait": 5, "user_id": 1001}
            async with session.get(f"{sandbox_server.url}/sandbox/api/view", params=params) as response:
                return (await response.json())["result"]

        waiting = asyncio.create_task(next_view())
        await asyncio.sleep(0.1)
        assert not waiting.done()
        await alice.send_text(ALICE, "wake up")
        changed = await asyncio.wait_for(waiting, 2)
        assert [m["text"] for m in changed["messages"]] == ["wake up"]


async def test_restarted_bot_polls_without_conflict(sandbox_server, alice):
    for attempt in range(2):
        errors = []
        app = build_test_app(sandbox_server, errors)
        async with app:
            await app.start()
            await app.updater.start_polling(poll_interval=0.0, timeout=dtm.timedelta(seconds=5))
            assert (await alice.ask(ALICE, f"run {attempt}"))["text"] == f"echo: run {attempt}"
            await app.updater.stop()
            await app.stop()
        assert errors == []
    conflicts = [c for c in await alice.calls("getUpdates") if not c["ok"]]
    assert conflicts == []


async def test_run_sandbox_serves_until_stopped():
    stop = asyncio.Event()
    ready: asyncio.Future = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(run_sandbox(port=0, on_ready=ready.set_result, stop=stop))
    sandbox_server: SandboxServer = await asyncio.wait_for(ready, 5)
    async with SandboxClient(sandbox_server.url) as alice:
        assert (await alice.state())["bot"]["username"] == "rnnbot_sandbox_bot"
    async with aiohttp.ClientSession() as session, session.get(sandbox_server.url) as response:
        assert "Telegram sandbox" in await response.text()
    stop.set()
    await asyncio.wait_for(task, 5)


@pytest.mark.parametrize("headers, body", [
    ({"Content-Type": "text/plain"}, '{"text": "/schedule 1s", "user_id": 1001}'),  # a "simple" cross-site POST
    ({"Content-Type": "application/x-www-form-urlencoded"}, "text=%2Fschedule+1s"),
    ({"Content-Type": "application/json", "Origin": "http://evil.example"}, '{"text": "/schedule 1s"}'),
    ({"Content-Type": "application/json", "Host": "evil.example"}, '{"text": "/schedule 1s"}'),  # DNS rebinding
    ({"Content-Type": "application/json", "Host": "127.0.0.1.evil.example"}, '{"text": "/schedule 1s"}'),
    ({"Content-Type": "application/json", "Origin": "null"}, '{"text": "/schedule 1s"}'),  # a sandboxed frame
])
async def test_the_control_api_refuses_what_another_web_page_could_send(sandbox_server, headers, body):
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{sandbox_server.url}/sandbox/api/send", data=body, headers=headers) as response:
            assert response.status == 403
            assert (await response.json())["ok"] is False
        async with http.post(f"{sandbox_server.url}/sandbox/api/reset", data=body, headers=headers) as response:
            assert response.status == 403
        async with http.get(f"{sandbox_server.url}/sandbox/api/view",
                            headers={k: v for k, v in headers.items() if k != "Content-Type"}) as response:
            assert response.status == (200 if set(headers) == {"Content-Type"} else 403)
    assert sandbox_server.state.chat_messages(ALICE) == []  # nothing was sent


async def test_the_page_the_client_and_the_bot_still_get_through(sandbox_server, alice, ptb_bot):
    port = sandbox_server.port
    same_origin = {"Content-Type": "application/json", "Origin": f"http://127.0.0.1:{port}"}
    async with aiohttp.ClientSession() as http:
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost"):  # the page, however it was opened
            headers = {**same_origin, "Host": host, "Origin": f"http://{host}"}
            async with http.post(f"{sandbox_server.url}/sandbox/api/send", json={"text": "hi"},
                                 headers=headers) as response:
                assert response.status == 200, await response.text()
        async with http.post(f"{sandbox_server.url}/bot{sandbox_server.token}/getMe",
                             headers={"Origin": "http://evil.example"}) as response:
            assert response.status == 403  # a web page cannot drive the Bot API either
    await alice.reset()  # a POST without a body of its own
    assert (await ptb_bot.get_me()).username == sandbox_server.bot_username  # PTB sends no Origin
    assert (await alice.send_text(None, "hello"))["text"] == "hello"
