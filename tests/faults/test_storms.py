"""Telegram having a bad day: a 5xx storm on the channel's posts, a 429 storm on users' replies.

Invariants: no verse twice and every slot recorded; every prompt answered and stored once."""

from __future__ import annotations

import asyncio

import pytest

from bot.scheduler.service import build_service
from sandbox import SandboxClient
from tests.helpers import check_exactly_once

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("code", [500, 502])
async def test_a_server_error_storm_posts_or_records_every_slot_once(code, make_settings, sqlite_db, verse_models,
                                                                    worker, ptb_bot, alice_in_chat):
    # Errors answered by Telegram (or a proxy) mean nothing was posted: retried with backoff, 1 s then 2 s.
    service = build_service(make_settings(post_schedule="1s", post_misfire_grace_s=0.5), sqlite_db, verse_models,
                            worker, ptb_bot)
    await alice_in_chat.inject_fault("sendMessage", code, count=2)
    await service.start()
    await asyncio.sleep(8)
    await service.stop()
    rows = await check_exactly_once(alice_in_chat, sqlite_db)
    assert [r.status for r in rows].count("sent") >= 2
    assert len([c for c in await alice_in_chat.calls("sendMessage") if c.get("error_code") == code]) == 2


async def test_a_flood_control_storm_on_replies_answers_and_stores_every_prompt_once(start_bot, sandbox_server):
    bot = await start_bot()
    users = [SandboxClient(sandbox_server.url, user_id=7000 + n, first_name=f"User{n}") for n in range(6)]
    async with users[0] as first:
        await first.inject_fault("sendMessage", 429, retry_after=1, count=8)
    try:
        replies = await asyncio.gather(*(user.ask(None, f"the {'abcdef'[n]} ", timeout=60)
                                         for n, user in enumerate(users)))
    finally:
        for user in users:
            await user.close()
    assert [r["text"][:6] for r in replies] == [f"the {c} " for c in "abcdef"]
    await bot.settled()
    stored = [bot.prompts(7000 + n) for n in range(6)]
    assert [[(p.outcome, len(p.completions)) for p in prompts] for prompts in stored] == [[("sent", 1)]] * 6
