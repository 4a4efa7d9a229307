"""Sending one post through PTB to the sandbox: what is retried, what is given up, and how."""

from __future__ import annotations

import time

import pytest
from telegram import Bot

from bot.scheduler.delivery import DeliveryFailed, send_post
from sandbox import SandboxServer
from tests.helpers import CHANNEL, LOCKED_CHANNEL

VERSE = "3:16 The lamb did bless every gate."


async def sends(alice_in_chat) -> list[dict]:
    return [c for c in await alice_in_chat.calls("sendMessage") if c.get("chat_id") in (CHANNEL, LOCKED_CHANNEL)]


async def test_flood_control_waits_as_told_then_posts_once(ptb_bot, alice_in_chat):
    await alice_in_chat.inject_fault("sendMessage", 429, retry_after=1, count=2)
    started = time.monotonic()
    message = await send_post(ptb_bot, CHANNEL, VERSE, retry_window_s=10)
    assert time.monotonic() - started >= 2.0  # waited retry_after twice
    assert [p["text"] for p in await alice_in_chat.channel_posts(CHANNEL)] == [VERSE]
    assert (await alice_in_chat.channel_posts(CHANNEL))[0]["message_id"] == message.message_id
    assert [c["ok"] for c in await sends(alice_in_chat)] == [False, False, True]


async def test_network_errors_are_retried_with_backoff(ptb_bot, alice_in_chat):
    await alice_in_chat.inject_fault("sendMessage", 502, count=3)
    await send_post(ptb_bot, CHANNEL, VERSE, retry_window_s=10, first_backoff_s=0.05)
    assert len(await alice_in_chat.channel_posts(CHANNEL)) == 1
    assert [c.get("error_code") for c in await sends(alice_in_chat)] == [502, 502, 502, None]


async def test_retries_stop_at_the_retry_window(ptb_bot, alice_in_chat):
    await alice_in_chat.inject_fault("sendMessage", 429, retry_after=1, count=None)
    with pytest.raises(DeliveryFailed, match=r"gave up after 1 attempts in 0s: flood control") as failed:
        await send_post(ptb_bot, CHANNEL, VERSE, retry_window_s=0.5)
    assert not failed.value.permanent and not failed.value.uncertain
    assert await alice_in_chat.channel_posts(CHANNEL) == []


@pytest.mark.parametrize("chat, error", [
    (LOCKED_CHANNEL, "Forbidden: Forbidden: bot is not a member of the channel chat"),
    ("@no_such_channel", "BadRequest: Chat not found"),
])
async def test_permanent_errors_are_not_retried(ptb_bot, alice_in_chat, chat, error):
    with pytest.raises(DeliveryFailed) as failed:
        await send_post(ptb_bot, chat, VERSE, retry_window_s=10)
    assert failed.value.permanent and failed.value.reason == error
    assert len([c for c in await alice_in_chat.calls("sendMessage") if c.get("chat_id") == chat]) == 1


async def test_a_timeout_after_sending_is_not_resent(ptb_bot, alice_in_chat):
    """The request reached the server; resending might post twice, so it gives up at once."""
    await alice_in_chat.set_latency(1.5, "sendMessage")
    started = time.monotonic()
    with pytest.raises(DeliveryFailed, match="it may have been posted, so it is not resent") as failed:
        await send_post(ptb_bot, CHANNEL, VERSE, retry_window_s=30, send_timeout_s=0.3, first_backoff_s=0.01)
    assert failed.value.uncertain and time.monotonic() - started < 1.5


async def test_connection_refused_is_retried_until_the_window_ends():
    sandbox_server = SandboxServer(port=0)
    await sandbox_server.start()
    async with Bot(sandbox_server.token, base_url=sandbox_server.bot_api_base_url) as offline:
        await sandbox_server.stop()  # the Bot API goes away: connection refused
        with pytest.raises(DeliveryFailed, match=r"gave up after [2-9] attempts .*network error") as failed:
            await send_post(offline, CHANNEL, VERSE, retry_window_s=0.5, first_backoff_s=0.05)
    assert not failed.value.uncertain
