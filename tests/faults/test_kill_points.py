"""`kill -9` of a real `rnnbot scheduler` at points of the post state machine, then a restart.

The points (see bot/scheduler/poster.py):
- waiting for a candidate, before any claim: nothing to recover;
- claimed, the send not begun: re-sent within the grace period, else recorded as missed
  (tests/bot/scheduler/test_poster.py builds that state directly: no Telegram call lies between
  the two database writes to hold the process at);
- the send in flight, before Telegram acted (tests/cli/test_scheduler_commands.py);
- Telegram acted, the outcome not yet recorded (here): the message is in the channel and its row
  says the send began.
Invariants after the restart: no verse twice, every slot recorded, nothing left claimed.
"""

from __future__ import annotations

import asyncio
import signal

import pytest

from db.session import Database
from tests.helpers import CHANNEL, all_posts, check_exactly_once, sandbox_env, start_cli, until

pytestmark = pytest.mark.slow


async def test_killed_after_telegram_posted_and_before_the_outcome_was_recorded(scheduler_env, tmp_path,
                                                                                sandbox_server, alice_in_chat):
    database = Database(scheduler_env["DATABASE_URL"])
    database.upgrade()
    await alice_in_chat.set_latency(60, "sendMessage", after=True)  # posted, then the answer hangs
    first = await start_cli(sandbox_env(scheduler_env, sandbox_server, POST_SCHEDULE="1s", POST_SEND_TIMEOUT_S="30"),
                            tmp_path, "scheduler", log_name="first.log")
    [arrived] = (await alice_in_chat.wait_for_messages(CHANNEL, timeout=90))[:1]
    first.send_signal(signal.SIGKILL)
    assert await asyncio.wait_for(first.wait(), 10) == -signal.SIGKILL
    await alice_in_chat.set_latency(0, "sendMessage", after=True)
    [interrupted] = [p for p in all_posts(database) if p.status == "claimed"]
    assert interrupted.sent_at is not None and interrupted.generation.text == arrived["text"]

    # A stale send is given up 1 + 4 x 1 = 5 s after it began (POST_RETRY_WINDOW_S + 4 x POST_SEND_TIMEOUT_S).
    second = await start_cli(sandbox_env(scheduler_env, sandbox_server, POST_SCHEDULE="1s", POST_RETRY_WINDOW_S="1",
                                         POST_SEND_TIMEOUT_S="1"), tmp_path, "scheduler", log_name="second.log")

    def recovered():
        posts = all_posts(database)
        failed = [p for p in posts if p.id == interrupted.id and p.status == "failed"]
        return failed and len([p for p in posts if p.status == "sent" and p.slot > interrupted.slot]) >= 2

    await until(recovered, 60, "the interrupted slot recorded and two later posts")
    second.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(second.wait(), 30) == 0
    rows = await check_exactly_once(alice_in_chat, database, arrived_unrecorded=1)
    [failed] = [r for r in rows if r.id == interrupted.id]
    assert failed.generation.status == "rejected"  # never offered again, though it never counted as sent
    database.close()
