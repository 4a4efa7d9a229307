"""/schedule and /post_now in the real bot (bot/app.py) against the sandbox."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from pydantic import SecretStr

from db import repositories as repo
from sandbox import SandboxClient
from tests.helpers import ALICE, CHANNEL

BOB = 2002  # not an admin


def entity_texts(message: dict, kind: str) -> list[str]:
    text = message["text"].encode("utf-16-le")  # entity offsets count UTF-16 code units
    return [text[2 * e["offset"]: 2 * (e["offset"] + e["length"])].decode("utf-16-le")
            for e in message.get("entities", []) if e["type"] == kind]


def code_texts(message: dict) -> list[str]:
    return entity_texts(message, "code")


def commands(message: dict) -> list[str]:
    return entity_texts(message, "bot_command")


async def test_admins_show_change_and_reset_the_schedule_and_post_now(make_settings, sandbox_server, caplog):
    from bot.app import build_application, running
    from bot.services import create_services

    caplog.set_level(logging.INFO)
    settings = make_settings(telegram_bot_token=SecretStr(sandbox_server.token),
                             telegram_api_base_url=sandbox_server.bot_api_base_url,
                             post_schedule="1h")
    services = create_services(settings, migrate=True)
    application = build_application(settings, services)
    async with running(application, poll_timeout=1), SandboxClient(sandbox_server.url) as alice:
        service = services.posting
        shown = await alice.ask(None, "/schedule")
        assert "Channel: @rnnbot_verses" in shown["text"]
        assert "every 1h (UTC-aligned), from POST_SCHEDULE" in shown["text"]
        assert "Next post: " in shown["text"] and "/schedule reset" in shown["text"]
        # Cron text is code, never a command link ("*/3" would make "/3" one).
        assert "/schedule 0 */3 * * *" in code_texts(shown)
        assert [c for c in commands(shown) if c != "/schedule"] == []

        refused = await alice.ask(None, "/schedule 61 * * * *")
        assert refused["text"].startswith("Schedule not changed: 61 * * * * is not a valid cron expression")
        assert "61 * * * *" in code_texts(refused)
        assert service.schedule.expression == "1h"

        changed = await alice.ask(None, "/schedule 0 */3 * * 1")
        assert changed["text"].startswith("Schedule is now cron 0 */3 * * 1 (UTC), from /schedule")
        assert code_texts(changed) == ["0 */3 * * 1"] and commands(changed) == ["/schedule"]  # the source
        await alice.ask(None, "/schedule 0 9 * * 1")
        next_post = service.scheduler.get_job("post").next_run_time
        assert (next_post.astimezone(UTC).strftime("%A %H:%M"), next_post > datetime.now(UTC)) == ("Monday 09:00", True)
        with services.database.transaction() as session:  # kept across restarts, seen by every process
            saved = repo.get_service_setting(session, key="post_schedule")
            assert (saved.value, saved.changed_by) == ("0 9 * * 1", ALICE)

        reset = (await alice.ask(None, "/schedule reset"))["text"]
        assert reset.startswith("Schedule is now every 1h")
        with services.database.transaction() as session:
            assert repo.get_service_setting(session, key="post_schedule") is None

        not_admin = (await alice.ask(BOB, "/schedule 1s"))["text"]
        assert "only for the bot's administrators" in not_admin and service.schedule.expression == "1h"
        assert "only for the bot's administrators" in (await alice.ask(BOB, "/post_now"))["text"]

        posted = (await alice.ask(None, "/post_now", timeout=30))["text"]
        assert posted.startswith(f"Posted to {CHANNEL}:\n")
        assert [p["text"] for p in await alice.channel_posts(CHANNEL)] == [posted.split("\n", 1)[1]]
        assert "sent: " in (await alice.ask(None, "/schedule"))["text"]  # the post is listed
    # One scheduler (PTB's unused JobQueue is off), and APScheduler's job bookkeeping stays out of INFO.
    scheduler_lines = [r.getMessage() for r in caplog.records if r.name.startswith("apscheduler")]
    assert scheduler_lines.count("Scheduler started") == 1, scheduler_lines
    assert not [line for line in scheduler_lines if "tentatively" in line or line.startswith("Added job")]


async def test_a_schedule_changed_in_one_process_reaches_the_others(make_settings, sqlite_db, verse_models, worker,
                                                                    ptb_bot):
    """The bot (POST_IN_BOT=false) saves /schedule; a separate scheduler picks it up on its next check."""
    from bot.scheduler.service import build_service

    settings = make_settings(post_schedule="1h")
    in_bot = build_service(settings, sqlite_db, verse_models, worker, ptb_bot, run_schedule=False)
    scheduler = build_service(settings, sqlite_db, verse_models, worker, ptb_bot)
    await scheduler.start()
    try:
        await in_bot.set_schedule("0 9 * * 1", changed_by=ALICE)
        assert scheduler.schedule.expression == "1h"  # until it looks
        await scheduler._watch_schedule()  # what APScheduler runs every SCHEDULE_POLL_S
        assert scheduler.schedule.expression == "0 9 * * 1"
        assert str(scheduler.scheduler.get_job("post").trigger) == str(scheduler.schedule.trigger)
        await in_bot.reset_schedule()
        await scheduler._watch_schedule()
        assert scheduler.schedule.expression == "1h"
    finally:
        await scheduler.stop()


async def test_a_stored_schedule_that_cannot_be_used_is_reported_and_the_bot_starts(make_settings, sandbox_server):
    """Saved by an older version (or by hand): the bot starts on POST_SCHEDULE and tells the admins."""
    from bot.app import build_application, running
    from bot.services import create_services
    from db.session import Database

    settings = make_settings(telegram_bot_token=SecretStr(sandbox_server.token),
                             telegram_api_base_url=sandbox_server.bot_api_base_url, post_schedule="1h")
    with Database(settings.database_url) as database:
        database.upgrade()
        with database.transaction() as session:
            repo.set_service_setting(session, key="post_schedule", value="3000000d", changed_by=ALICE)
    async with SandboxClient(sandbox_server.url) as alice:
        start = await alice.send_text(None, "/start")  # so the bot may write to her
        services = create_services(settings)
        application = build_application(settings, services)
        async with running(application, poll_timeout=1):
            await alice.wait_for_bot_reply(ALICE, after=start, predicate=lambda m: m["text"].startswith("Hello"))
            assert services.posting.schedule.expression == "1h"
            report = await alice.wait_for_messages(ALICE, lambda m: "3000000d" in m.get("text", ""))
            assert "cannot be used" in report[0]["text"] and "POST_SCHEDULE" in report[0]["text"]
            shown = (await alice.ask(None, "/schedule"))["text"]
            assert "every 1h (UTC-aligned), from POST_SCHEDULE" in shown
            assert "the saved schedule '3000000d' cannot be used" in shown
            refused = (await alice.ask(None, "/schedule 3000000d"))["text"]
            assert refused.startswith("Schedule not changed: ") and "cannot be used" in refused
