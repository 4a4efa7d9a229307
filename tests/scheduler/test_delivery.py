"""Sending one post through PTB to the sandbox: what is retried, what is given up, and how."""

from __future__ import annotations

import time

import pytest
from telegram import Bot

from sandbox import SandboxServer
from bot.scheduler.delivery import DeliveryFailed, send_post
from tests.scheduler.conftest import CHANNEL, LOCKED_CHANNEL

VERSE = "3:16 The lamb did bless every gate."


async def sends(client) -> list[dict]:
    return [c for c in await client.calls("sendMessage") if c.get("chat_id") in (CHANNEL, LOCKED_CHANNEL)]


async def test_flood_control_waits_as_told_then_posts_once(bot, client):
    await client.inject_fault("sendMessage", 429, retry_after=1, count=2)
    started = time.monotonic()
    message = await send_post(bot, CHANNEL, VERSE, retry_window_s=10)
    assert time.monotonic() - started >= 2.0  # waited retry_after twice
    assert [p["text"] for p in await client.channel_posts(CHANNEL)] == [VERSE]
    assert (await client.channel_posts(CHANNEL))[0]["message_id"] == message.message_id
    assert [c["ok"] for c in await sends(client)] == [False, False, True]


async def test_network_errors_are_retried_with_backoff(bot, client):
    await client.inject_fault("sendMessage", 502, count=3)
    await send_post(bot, CHANNEL, VERSE, retry_window_s=10, first_backoff_s=0.05)
    assert len(await client.channel_posts(CHANNEL)) == 1
    assert [c.get("error_code") for c in await sends(client)] == [502, 502, 502, None]


async def test_retries_stop_at_the_retry_window(bot, client):
    await client.inject_fault("sendMessage", 429, retry_after=1, count=None)
    with pytest.raises(DeliveryFailed, match=r"gave up after 1 attempts in 0s: flood control") as failed:
        await send_post(bot, CHANNEL, VERSE, retry_window_s=0.5)
    assert not failed.value.permanent and not failed.value.uncertain
    assert await client.channel_posts(CHANNEL) == []


@pytest.mark.parametrize("chat, error", [
    (LOCKED_CHANNEL, "Forbidden: Forbidden: bot is not a member of the channel chat"),
    ("@no_such_channel", "BadRequest: Chat not found"),
])
async def test_permanent_errors_are_not_retried(bot, client, chat, error):
    with pytest.raises(DeliveryFailed) as failed:
        await send_post(bot, chat, VERSE, retry_window_s=10)
    assert failed.value.permanent and failed.value.reason == error
    assert len([c for c in await client.calls("sendMessage") if c.get("chat_id") == chat]) == 1


async def test_a_timeout_after_sending_is_not_resent(bot, client):
    """The request reached the server; resending might post twice, so it gives up at once."""
    await client.set_latency(1.5, "sendMessage")
    started = time.monotonic()
    with pytest.raises(DeliveryFailed, match="it may have been posted, so it is not resent") as failed:
        await send_post(bot, CHANNEL, VERSE, retry_window_s=30, send_timeout_s=0.3, first_backoff_s=0.01)
    assert failed.value.uncertain and time.monotonic() - started < 1.5


async def test_connection_refused_is_retried_until_the_window_ends():
    server = SandboxServer(port=0)
    await server.start()
    async with Bot(server.token, base_url=server.bot_api_base_url) as offline:
        await server.stop()  # the Bot API goes away: connection refused
        with pytest.raises(DeliveryFailed, match=r"gave up after [2-9] attempts .*network error") as failed:
            await send_post(offline, CHANNEL, VERSE, retry_window_s=0.5, first_backoff_s=0.05)
    assert not failed.value.uncertain
