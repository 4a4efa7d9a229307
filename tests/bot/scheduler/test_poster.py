"""The poster against the sandbox, with a real model, worker and database: exactly once per slot."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.scheduler.poster import parse_missed, utcnow
from bot.scheduler.service import build_service
from db import repositories as repo
from db.models import Generation
from db.session import Database
from tests.helpers import ALICE, CHANNEL, LOCKED_CHANNEL, all_posts, check_exactly_once, until


def service_for(make_settings, database, verse_models, worker, ptb_bot, run_schedule=True, **changes):
    return build_service(make_settings(**changes), database, verse_models, worker, ptb_bot, run_schedule=run_schedule)


async def test_posts_arrive_in_the_channel_once_per_slot(make_settings, sqlite_db, verse_models, worker, ptb_bot,
                                                         alice_in_chat):
    service = service_for(make_settings, sqlite_db, verse_models, worker, ptb_bot, post_schedule="1s")
    await service.start()
    await asyncio.sleep(3.6)
    await service.stop()
    rows = await check_exactly_once(alice_in_chat, sqlite_db)
    sent = [r for r in rows if r.status == "sent"]
    assert len(sent) >= 3 and len(sent) == len(rows)  # nothing missed or failed
    assert all(b.slot - a.slot == timedelta(seconds=1) for a, b in zip(sent, sent[1:]))
    assert all(r.generation.status == "posted" for r in sent)
    with sqlite_db.transaction() as session:  # every sample is kept: posted, waiting, or rejected with a reason
        generations = session.scalars(select(Generation)).all()
        assert {g.status for g in generations} <= {"posted", "candidate", "rejected"}
        assert all(g.reject_reason for g in generations if g.status == "rejected")
        assert len([g for g in generations if g.status == "posted"]) == len(sent)


async def test_missed_slots_post_within_grace_and_coalesce(make_settings, sqlite_db, verse_models, worker, ptb_bot,
                                                           alice_in_chat):
    service = service_for(make_settings, sqlite_db, verse_models, worker, ptb_bot, run_schedule=False,
                          post_schedule="1h",
                          post_misfire_grace_s=60)
    await service.start()
    poster = service.poster
    nine = datetime(2030, 1, 1, 9, tzinfo=UTC)
    assert await poster.tick(now=nine + timedelta(minutes=30)) == []  # first run ever: nothing was missed
    assert all_posts(sqlite_db) == []

    # Up at 09:00:20, down from before 10:00 until 12:00:30: post 12:00, record 10:00 and 11:00 as one.
    [nine_oclock] = await poster.tick(now=nine + timedelta(seconds=20))
    assert nine_oclock.status == "sent"
    missed, posted = await poster.tick(now=nine + timedelta(hours=3, seconds=30))
    assert (posted.status, posted.slot) == ("sent", nine + timedelta(hours=3))
    assert (missed.status, missed.slot) == ("missed", nine + timedelta(hours=2))
    assert missed.error.startswith("missed: 2 slots from 2030-01-01T10:00:00+00:00 to 2030-01-01T11:00:00+00:00")
    assert await poster.tick(now=nine + timedelta(hours=3, seconds=40)) == []  # that slot is done

    # Down again until past 15:00's grace: 13:00, 14:00 and 15:00 are recorded, nothing is posted late.
    [late] = await poster.tick(now=nine + timedelta(hours=6, minutes=10))
    assert (late.status, late.slot) == ("missed", nine + timedelta(hours=6))
    assert parse_missed(late.error) == (3, nine + timedelta(hours=4), nine + timedelta(hours=6))
    [on_time] = await poster.tick(now=nine + timedelta(hours=7, seconds=1))
    await service.stop()

    assert on_time.status == "sent"
    rows = all_posts(sqlite_db)
    assert [(r.slot.hour, r.status) for r in rows] == [(9, "sent"), (11, "failed"), (12, "sent"), (15, "failed"),
                                                       (16, "sent")]
    assert [r.generation_id is None for r in rows] == [False, True, False, True, False]  # missed: no verse
    assert len(await alice_in_chat.channel_posts(CHANNEL)) == 3


async def test_stopping_mid_send_lets_the_post_arrive_and_be_recorded(make_settings, sqlite_db, verse_models, worker,
                                                                      ptb_bot,
                                                                      alice_in_chat):
    # APScheduler's shutdown cancels a running tick; the message on its way must still be recorded.
    await alice_in_chat.set_latency(1.5, "sendMessage")
    service = service_for(make_settings, sqlite_db, verse_models, worker, ptb_bot, post_schedule="1s")
    await service.start()  # its first post comes from start(); later ones from APScheduler's ticks
    await alice_in_chat.wait_for_channel_post(CHANNEL, timeout=30)
    for sending in (False, True):  # the first send is recorded, the next one is on its way
        for _ in range(400):
            if service.poster.sending is sending:
                break
            await asyncio.sleep(0.01)
        assert service.poster.sending is sending
    await service.stop()
    rows = await check_exactly_once(alice_in_chat, sqlite_db)
    assert [r.status for r in rows].count("sent") >= 2


async def test_interrupted_posts_are_resent_only_when_safe(make_settings, sqlite_db, verse_models, worker, ptb_bot,
                                                           alice_in_chat):
    service = service_for(make_settings, sqlite_db, verse_models, worker, ptb_bot, run_schedule=False,
                          post_schedule="1h",
                          post_misfire_grace_s=60, post_retry_window_s=10, post_send_timeout_s=5)
    await service.start()
    channel_id = await service.poster.channel_id()
    hour = service.schedule.latest_at_or_before(utcnow()) + timedelta(hours=2)
    now = hour + timedelta(seconds=30)  # later than any send that begins in this test (stale after 30 s)

    def crashed(text: str, slot: datetime, sending: bool) -> int:
        """The rows a process leaves when it dies after claiming (and, with `sending`, after starting to send)."""
        with sqlite_db.transaction() as session:
            generation = repo.add_generation(session, text=text, model_name="verses",
                                             params=repo.SamplingParams(temperature=0.9, max_chars=81))
            post = repo.claim_post_slot(session, channel_id=channel_id, slot=slot, generation_id=generation.id)
            if sending:
                repo.begin_post_send(session, post_id=post.id)
            return post.id

    unsent_recent = crashed("1:1 The river did bless the king.", hour, sending=False)
    unsent_old = crashed("1:2 The hills went unto the sea.", hour - timedelta(hours=2), sending=False)
    sending_old = crashed("1:3 The stone spake to the gate.", hour - timedelta(hours=1), sending=True)
    results = {r.slot: r for r in await service.poster.tick(now=now)}

    assert results[hour].status == "sent"  # never sent, still within grace: sent now
    assert results[hour - timedelta(hours=2)].status == "missed"  # never sent, too late: recorded
    assert results[hour - timedelta(hours=1)].status == "failed"  # may have been sent: never resent
    assert len(results) == 3  # and the due slot (`hour`) is not posted a second time
    with sqlite_db.transaction() as session:
        post = {i: repo.get_post(session, post_id=i) for i in (unsent_recent, unsent_old, sending_old)}
        assert post[unsent_recent].status == "sent"
        assert post[unsent_old].error.startswith("missed: 1 slot from")
        assert post[sending_old].error.startswith("interrupted while sending")
    assert [m["text"] for m in await alice_in_chat.channel_posts(CHANNEL)] == ["1:1 The river did bless the king."]
    told = await alice_in_chat.wait_for_messages(ALICE, lambda m: "interrupted while sending" in m.get("text", ""))
    assert "may or may not be in the channel" in told[0]["text"]

    # A send that began moments ago belongs to a process that may still be sending: left alone.
    in_flight = crashed("1:4 The lamb will keep the city.", hour + timedelta(hours=1), sending=True)
    assert await service.poster.tick(now=utcnow()) == []
    await service.stop()
    with sqlite_db.transaction() as session:
        assert repo.get_post(session, post_id=in_flight).status == "claimed"


async def test_forbidden_is_recorded_and_admins_told_once(make_settings, sqlite_db, verse_models, worker, ptb_bot,
                                                          alice_in_chat):
    service = service_for(make_settings, sqlite_db, verse_models, worker, ptb_bot, run_schedule=False,
                          post_schedule="1h",
                          channel_id=LOCKED_CHANNEL)
    await service.start()
    hour = service.schedule.latest_at_or_before(utcnow())
    [first] = await service.poster.tick(now=hour + timedelta(seconds=1))
    [second] = await service.poster.tick(now=hour + timedelta(hours=1, seconds=1))
    await service.stop()
    assert first.status == second.status == "failed"
    assert first.error == "Forbidden: Forbidden: bot is not a member of the channel chat"
    assert [r.status for r in all_posts(sqlite_db)] == ["failed", "failed"]
    refused = [c for c in await alice_in_chat.calls("sendMessage") if c.get("error_code") == 403]
    assert len(refused) == 2  # one try per slot, never retried
    reports = [m for m in await alice_in_chat.messages(ALICE) if "Auto-posting problem" in m.get("text", "")]
    assert len(reports) == 1 and "bot is not a member of the channel chat" in reports[0]["text"]


async def test_a_flood_control_storm_posts_or_records_every_slot(make_settings, sqlite_db, verse_models, worker,
                                                                 ptb_bot,
                                                                 alice_in_chat):
    service = service_for(make_settings, sqlite_db, verse_models, worker, ptb_bot, post_schedule="1s",
                          post_misfire_grace_s=0.5)
    await alice_in_chat.inject_fault("sendMessage", 429, retry_after=1, count=3)
    await service.start()
    await asyncio.sleep(5.6)
    await service.stop()
    rows = await check_exactly_once(alice_in_chat, sqlite_db)
    statuses = [r.status for r in rows]
    assert statuses.count("sent") >= 2 and "failed" in statuses  # the storm cost some slots: recorded
    assert len([c for c in await alice_in_chat.calls("sendMessage") if c.get("error_code") == 429]) == 3


@pytest.mark.slow
async def test_two_schedulers_at_once_post_each_slot_once(make_settings, database_url, verse_models, worker,
                                                          sandbox_server,
                                                          alice_in_chat):
    """Two services on two connection pools and two Bots, racing for the same one-second slots."""
    from telegram import Bot

    services, databases = [], []
    for _ in range(2):
        database = Database(database_url)
        database.upgrade()
        telegram = Bot(sandbox_server.token, base_url=sandbox_server.bot_api_base_url)
        await telegram.initialize()
        databases.append(database)
        services.append((service_for(make_settings, database, verse_models, worker, telegram, post_schedule="1s",
                                     database_url=database_url), telegram))
    await asyncio.gather(*(service.start() for service, _ in services))
    await asyncio.sleep(4.5)
    await asyncio.gather(*(service.stop() for service, _ in services))
    for _, telegram in services:
        await telegram.shutdown()
    rows = await check_exactly_once(alice_in_chat, databases[0])
    assert len([r for r in rows if r.status == "sent"]) >= 3
    for database in databases:
        database.close()


async def test_no_acceptable_candidate_is_recorded_with_the_rejections(make_settings, sqlite_db, verse_models, worker,
                                                                       ptb_bot, alice_in_chat):
    # The model writes 30-50 character lines; none fits 79-80.
    service = service_for(make_settings, sqlite_db, verse_models, worker, ptb_bot, run_schedule=False,
                          post_schedule="1h",
                          post_min_chars=79, post_max_chars=80)
    await service.start()
    service.poster.candidate_timeout_s = 1.0
    hour = service.schedule.latest_at_or_before(utcnow())
    [result] = await service.poster.tick(now=hour + timedelta(seconds=1))
    await service.stop()
    assert result.status == "failed" and result.error.startswith("no acceptable candidate within 1s (last rejections:")
    assert "too short (" in result.error
    [row] = all_posts(sqlite_db)
    assert (row.status, row.error, row.generation_id) == ("failed", result.error, None)  # no verse went out
    assert await alice_in_chat.channel_posts(CHANNEL) == []
    await alice_in_chat.wait_for_messages(ALICE, lambda m: "no acceptable candidate" in m.get("text", ""))
    with sqlite_db.transaction() as session:
        counts = repo.table_counts(session)
        assert counts["generations"] >= 8 and repo.candidate_generations(session) == []  # all rejected, with reasons
        rejected = session.scalars(select(Generation)).all()
        assert all(g.status == "rejected" for g in rejected) and any("too short" in g.reject_reason for g in rejected)


async def test_a_verse_whose_send_timed_out_is_not_posted_again_after_a_restart(make_settings, sqlite_db, verse_models,
                                                                                 worker, ptb_bot, alice_in_chat):
    # The send times out after the request reached Telegram, and the message arrives after all.
    settings = dict(run_schedule=False, post_schedule="1h", post_send_timeout_s=0.5, post_buffer_size=1)
    await alice_in_chat.set_latency(1.5, "sendMessage", after=True)
    service = service_for(make_settings, sqlite_db, verse_models, worker, ptb_bot, **settings)
    await service.start()
    hour = service.schedule.latest_at_or_before(utcnow())
    [timed_out] = await service.poster.tick(now=hour + timedelta(seconds=1))
    assert timed_out.status == "failed" and "it may have been posted" in timed_out.error
    await alice_in_chat.wait_for_channel_post(CHANNEL)
    await service.stop()
    await alice_in_chat.set_latency(0, "sendMessage", after=True)

    # A restart reloads the candidates a previous run stored: the timed-out verse is not one of them.
    restarted = service_for(make_settings, sqlite_db, verse_models, worker, ptb_bot, **settings)
    await restarted.start()
    [posted] = await restarted.poster.tick(now=hour + timedelta(hours=1, seconds=1))
    await restarted.stop()
    assert posted.status == "sent" and posted.text != timed_out.text
    assert [m["text"] for m in await alice_in_chat.channel_posts(CHANNEL)] == [timed_out.text, posted.text]


async def test_a_model_whose_samples_never_pass_warns_and_tells_the_admins_once(make_settings, sqlite_db,
                                                                                 verse_models, worker, ptb_bot,
                                                                                 alice_in_chat, caplog):
    # The model writes 30-50 character lines; none fits 79-80: every round is rejected.
    service = service_for(make_settings, sqlite_db, verse_models, worker, ptb_bot, run_schedule=False,
                          post_schedule="1h", post_min_chars=79, post_max_chars=80, post_starved_rounds=2)
    buffer = service.buffer
    with caplog.at_level(logging.WARNING, logger="bot.scheduler.buffer"):
        await service.start()
        await until(lambda: buffer.starved_rounds >= 4, 60, "four rounds without an acceptable sample")

        def droughts() -> list[str]:
            return [r.getMessage() for r in caplog.records if "passed the post filters" in r.getMessage()]

        [warning] = droughts()  # at the second round, not again at the third and fourth
        assert warning.startswith("post candidates: model 'verses': none of 16 samples in the last 2 rounds")
        assert "rejected as too short (" in warning and "POST_MIN_CHARS" in warning

        async def reports() -> list[str]:
            return [m["text"] for m in await alice_in_chat.messages(ALICE) if "passed the post filters" in m["text"]]

        [report] = await reports()
        assert report.startswith("Auto-posting problem: model 'verses': none of 16 samples")

        # A post that succeeds ends it; the next drought is reported again.
        buffer.rules = replace(buffer.rules, min_chars=10)
        hour = service.schedule.latest_at_or_before(utcnow())
        [posted] = await service.poster.tick(now=hour + timedelta(seconds=1))
        assert posted.status == "sent"
        buffer.rules = replace(buffer.rules, min_chars=79)
        # Empty the buffer so that it samples again, under the strict rules. A round begun under the
        # lenient ones may still land its candidates after this: keep taking them until the warning.
        async with asyncio.timeout(60):
            while len(droughts()) < 2:
                while buffer.peek() is not None:
                    await buffer.take(0)
                await asyncio.sleep(0.1)
        assert len(droughts()) == 2
        for _ in range(100):
            if len(await reports()) == 2:
                break
            await asyncio.sleep(0.1)
        assert len(await reports()) == 2
    await service.stop()
