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

from db.session import Database
from tests.helpers import CHANNEL, all_posts, check_exactly_once, sandbox_env, start_cli, until

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
