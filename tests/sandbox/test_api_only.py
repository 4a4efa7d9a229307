"""`rnnbot sandbox --api-only`: the Bot API and /healthz in their own process, for a bot elsewhere
(another process, or the bot container of the compose test), over real HTTP."""

from __future__ import annotations

import json
import os
import urllib.request

import pytest
from telegram import Bot
from telegram.error import InvalidToken

from sandbox import SandboxClient
from tests.helpers import ROOT, assert_clean_error, free_port, run_cli, start_process, stop_process, until

TOKEN = "7123456789:api-only-test-token"


def healthz(url: str) -> tuple[int, dict] | None:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
            return response.status, json.loads(response.read())
    except OSError:
        return None


@pytest.fixture
async def api_only(tmp_path):
    """A running `rnnbot sandbox --api-only` with its own token and channel; its URL."""
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = await start_process("sandbox", "--api-only", "--port", str(port), "--token", TOKEN,
                                  "--channel", "@deploy_verses", "--chats-file", "", env=env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        await until(lambda: healthz(url), 30, "the sandbox's /healthz")
    except TimeoutError:
        process.kill()
        _, err = await process.communicate()
        raise AssertionError(err.decode()) from None
    yield process, url
    if process.returncode is None:
        process.kill()
        await process.communicate()


async def test_health_endpoint_names_the_bot(api_only):
    _, url = api_only
    status, body = healthz(url)
    assert status == 200
    assert body == {"ok": True, "bot_username": "rnnbot_sandbox_bot"}


async def test_a_bot_in_another_process_talks_to_it(api_only):
    process, url = api_only
    async with Bot(TOKEN, base_url=f"{url}/bot") as bot:
        me = await bot.get_me()
        assert (me.id, me.username) == (7123456789, "rnnbot_sandbox_bot")
        # a user writes; the bot gets the update and answers; the user sees the answer
        async with SandboxClient(url) as alice:
            sent = await alice.send_text(None, "hello from the page")
            (update,) = await bot.get_updates(timeout=5)
            assert update.message.text == "hello from the page"
            await bot.send_message(update.message.chat.id, "hello back")
            reply = await alice.wait_for_bot_reply(sent["chat"]["id"], after=sent)
            assert reply["text"] == "hello back"
        # the channel given with --channel takes posts
        post = await bot.send_message("@deploy_verses", "1:1 In the beginning.")
        assert post.chat.username == "deploy_verses"
    # only the token given with --token is accepted
    with pytest.raises(InvalidToken):
        async with Bot("7000000001:sandbox-token-not-a-secret", base_url=f"{url}/bot"):
            pass
    rc, out, err = await stop_process(process)
    assert rc == 0, err
    assert "no bot of its own" in out
    assert TOKEN not in out + err  # the token is never printed or logged


@pytest.mark.parametrize(("args", "fragment"), [
    (["--api-only", "--token", "not-a-token"], "--token: token must look like a Telegram token"),
    (["--api-only", "--channel", "verses"], "--channel must be a channel's @name or a numeric chat id"),
    (["--token", TOKEN], "--token and --channel go with --api-only"),
])
def test_bad_options_are_one_line_errors(args, fragment):
    assert_clean_error(run_cli("sandbox", "--port", "0", "--chats-file", "", *args, timeout=60), fragment)
