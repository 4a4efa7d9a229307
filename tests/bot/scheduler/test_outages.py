"""The poster while its database is away: a stopped PostgreSQL, a SQLite write lock held too long.

Whatever happens, no verse goes out twice, nothing is sent without its claim committed, and a
send's outcome is recorded once the database is back, even across a restart.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy.exc import OperationalError

from bot.scheduler.poster import utcnow
from bot.scheduler.service import build_service
from db.outbox import Outbox
from db.session import Database
from tests.helpers import CHANNEL, check_exactly_once, sqlite_write_lock, wait_until

pytestmark = pytest.mark.slow
HOUR = timedelta(hours=1)


def posting(make_settings, database, verse_models, worker, ptb_bot, outbox_path, outbox=None, **changes):
    settings = make_settings(**changes)
    outbox = outbox or Outbox(database, path=outbox_path, retry_s=0.2)
    service = build_service(settings, database, verse_models, worker, ptb_bot, run_schedule=False, outbox=outbox)
    return service, outbox


async def wait_for_send(service) -> None:
    """Until a claimed post's send has begun (its claim and begin_post_send are committed)."""
    await wait_until(lambda: service.poster.sending, timeout=30, what="a send in flight")


async def test_a_post_sent_while_postgresql_is_down_is_recorded_when_it_is_back(
        make_settings, own_postgres, verse_models, worker, ptb_bot, alice_in_chat, tmp_path):
    cluster, url = own_postgres
    database = Database(url)
    database.upgrade()
    await alice_in_chat.set_latency(1.5, "sendMessage")  # the database stops while the message travels
    settings = dict(post_schedule="1h", database_url=url, post_buffer_size=1)
    service, outbox = posting(make_settings, database, verse_models, worker, ptb_bot, tmp_path / "outbox.jsonl",
                              **settings)
    await service.start()
    hour = service.schedule.latest_at_or_before(utcnow())
    tick = asyncio.create_task(service.poster.tick(now=hour + timedelta(seconds=1)))
    await wait_for_send(service)
    await asyncio.to_thread(cluster.stop)
    [sent] = await tick
    assert sent.status == "sent" and outbox.pending == 1  # in the channel; its outcome waits

    # Stopped while the database is still down: the outcome waits in the file for the next start.
    await service.stop()
    await outbox.stop(timeout=1)
    outbox.close()
    outbox = Outbox(database, path=tmp_path / "outbox.jsonl", retry_s=0.2)
    assert [w.data for w in outbox.waiting()] == [{"post_id": 1, "message_id": sent.message_id}]
    await asyncio.to_thread(cluster.start)
    service, outbox = posting(make_settings, database, verse_models, worker, ptb_bot, None, outbox, **settings)
    outbox.start()
    await wait_until(lambda: outbox.pending == 0, timeout=30, what="the waiting outcome written")
    await alice_in_chat.set_latency(0, "sendMessage")
    await service.start()
    [later] = await service.poster.tick(now=hour + timedelta(hours=1, seconds=1))
    await service.stop()
    await outbox.stop()
    outbox.close()

    assert later.status == "sent" and later.text != sent.text
    rows = await check_exactly_once(alice_in_chat, database, HOUR)
    assert [(r.status, r.message_id) for r in rows] == [("sent", sent.message_id), ("sent", later.message_id)]
    database.close()


async def test_a_tick_while_postgresql_is_down_sends_nothing_and_names_the_cause(
        make_settings, own_postgres, verse_models, worker, ptb_bot, alice_in_chat, tmp_path):
    cluster, url = own_postgres
    database = Database(url)
    database.upgrade()
    service, outbox = posting(make_settings, database, verse_models, worker, ptb_bot, tmp_path / "outbox.jsonl",
                              post_schedule="1h", database_url=url, post_misfire_grace_s=60)
    await service.start()
    hour = service.schedule.latest_at_or_before(utcnow())
    [first] = await service.poster.tick(now=hour + timedelta(seconds=1))
    await asyncio.to_thread(cluster.stop)
    with pytest.raises(OperationalError, match="connection"):
        await service.poster.tick(now=hour + timedelta(hours=1, seconds=1))
    await asyncio.to_thread(cluster.start)
    missed, posted = await service.poster.tick(now=hour + timedelta(hours=2, seconds=1))
    await service.stop()
    await outbox.stop()
    outbox.close()

    assert (first.status, missed.status, posted.status) == ("sent", "missed", "sent")
    assert "the database was unreachable" in missed.error and "down or still busy" not in missed.error
    assert len(await alice_in_chat.channel_posts(CHANNEL)) == 2  # nothing went out without its claim
    await check_exactly_once(alice_in_chat, database, HOUR)
    database.close()


async def test_an_outcome_blocked_by_a_sqlite_lock_is_written_after_it(
        make_settings, tmp_path, verse_models, worker, ptb_bot, alice_in_chat):
    path = tmp_path / "locked.db"
    database = Database(f"sqlite:///{path}", busy_timeout_ms=300)
    database.upgrade()
    await alice_in_chat.set_latency(1, "sendMessage")
    service, outbox = posting(make_settings, database, verse_models, worker, ptb_bot, tmp_path / "outbox.jsonl",
                              post_schedule="1h", database_url=f"sqlite:///{path}")
    await service.start()
    hour = service.schedule.latest_at_or_before(utcnow())
    tick = asyncio.create_task(service.poster.tick(now=hour + timedelta(seconds=1)))
    await wait_for_send(service)
    with sqlite_write_lock(path):  # another process holds the lock far longer than the busy timeout
        [sent] = await tick
        assert sent.status == "sent" and outbox.pending == 1
    await wait_until(lambda: outbox.pending == 0, timeout=30, what="the outcome written")
    await service.stop()
    await outbox.stop()
    outbox.close()
    rows = await check_exactly_once(alice_in_chat, database, HOUR)
    assert [(r.status, r.message_id) for r in rows] == [("sent", sent.message_id)]
    database.close()
