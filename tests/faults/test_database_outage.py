"""A database outage during a slot, with real `rnnbot scheduler` processes: slow sends, PostgreSQL
stopped mid-send and started again, then the scheduler restarted.

Invariants: no verse twice, every slot recorded (sent, failed or missed, none left claimed), and no
failure text that blames a stopped process when the process never stopped.
"""

from __future__ import annotations

import asyncio
import signal
from datetime import timedelta

import pytest

from bot.handlers.errors import DATABASE_DOWN
from db.session import Database
from sandbox import SandboxClient
from tests.helpers import ALICE, CHANNEL, all_posts, check_exactly_once, sandbox_env, start_cli, until, wait_until

pytestmark = pytest.mark.slow

SLOT = timedelta(seconds=3)


async def test_postgresql_stopped_mid_send_then_a_restart_posts_no_verse_twice(scheduler_env, tmp_path, sandbox_server,
                                                                                alice_in_chat, own_postgres):
    cluster, url = own_postgres
    database = Database(url)
    database.upgrade()
    settings = sandbox_env(scheduler_env, sandbox_server, DATABASE_URL=url, POST_SCHEDULE="3s", POST_RETRY_WINDOW_S="3",
                           POST_SEND_TIMEOUT_S="2.5", POST_BUFFER_SIZE="1", POST_MISFIRE_GRACE_S="2")
    await alice_in_chat.set_latency(2, "sendMessage")  # every send takes 2 s
    first = await start_cli(settings, tmp_path, "scheduler", log_name="first.log")

    def in_flight():
        return [p for p in all_posts(database) if p.status == "claimed" and p.sent_at is not None]

    [interrupted] = await until(in_flight, 90, "a send in flight")
    await asyncio.to_thread(cluster.stop)  # while the message travels
    await alice_in_chat.wait_for_channel_post(CHANNEL, timeout=10)  # it arrives
    await asyncio.sleep(4)  # the outcome cannot be written, and slots pass
    await asyncio.to_thread(cluster.start)

    def recorded():
        return [p for p in all_posts(database) if p.id == interrupted.id and p.status != "claimed"]

    [outcome] = await until(recorded, 30, "the interrupted post's outcome")
    first.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(first.wait(), 30) == 0
    await alice_in_chat.set_latency(0, "sendMessage")

    second = await start_cli(settings, tmp_path, "scheduler", log_name="second.log")

    def two_more():
        return len([p for p in all_posts(database) if p.status == "sent" and p.slot > interrupted.slot]) >= 2

    await until(two_more, 90, "two posts after the restart")
    second.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(second.wait(), 30) == 0

    first_post = (await alice_in_chat.channel_posts(CHANNEL))[0]
    assert (outcome.status, outcome.message_id) == ("sent", first_post["message_id"])  # the truth, once back
    rows = await check_exactly_once(alice_in_chat, database, SLOT)
    assert not [r for r in rows if "process stopped" in (r.error or "")]
    database.close()


async def test_a_postgresql_restart_under_load_answers_and_stores_every_prompt_once(start_bot, own_postgres,
                                                                                      sandbox_server):
    """Ten users chatting while the database stops and starts again: every prompt is answered (no
    "Sorry"), and once the database is back every one is stored exactly once, in order per user."""
    cluster, url = own_postgres
    bot = await start_bot(database_url=url, default_length=20)
    users = [SandboxClient(sandbox_server.url, user_id=6000 + n, first_name=f"User{n}") for n in range(10)]
    answered = []

    def prompt(n: int, i: int) -> str:
        return f"the {'abcdefghij'[n]}{'wxyz'[i]} "  # letters the model knows: one reply each

    async def chat(user: SandboxClient, n: int) -> None:
        for i in range(4):
            reply = await user.ask(None, prompt(n, i), timeout=60)
            assert reply["text"].startswith(prompt(n, i)), reply["text"]
            answered.append((n, i))

    talks = asyncio.gather(*(chat(user, n) for n, user in enumerate(users)))
    try:
        await wait_until(lambda: len(answered) >= 8, timeout=60, what="some answers before the outage")
        await asyncio.to_thread(cluster.stop)
        await wait_until(lambda: len(answered) >= 24, timeout=60, what="answers during the outage")
        assert bot.services.outbox.pending > 0 and not bot.services.outbox.writes_ok
        await asyncio.to_thread(cluster.start)
        await talks
    finally:
        for user in users:
            await user.close()
    await wait_until(lambda: bot.services.outbox.pending == 0, timeout=60, what="the waiting writes applied")
    await bot.settled()
    for n in range(10):
        prompts = bot.prompts(6000 + n)[::-1]  # oldest first
        assert [(p.text, p.outcome, len(p.completions)) for p in prompts] == [
            (prompt(n, i), "sent", 1) for i in range(4)]
    assert bot.counts()["prompts"] == 40


async def test_with_the_database_down_settings_say_so_and_prompts_are_answered(start_bot, own_postgres, alice):
    cluster, url = own_postgres
    bot = await start_bot(database_url=url)
    await asyncio.to_thread(cluster.stop)
    assert (await alice.ask(None, "/length 50"))["text"] == DATABASE_DOWN
    assert (await alice.ask(None, "the quick ", timeout=30))["text"].startswith("the quick ")
    health = bot.services.outbox
    assert health.pending == 1 and not health.writes_ok
    await asyncio.to_thread(cluster.start)
    await wait_until(lambda: health.pending == 0, timeout=30, what="the prompt stored")
    assert [p.text for p in bot.prompts(ALICE)] == ["the quick "]
