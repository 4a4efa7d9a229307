"""/schedule and /post_now in the real bot (bot/app.py) against the sandbox."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import SecretStr

from bot.sandbox import SandboxClient
from tests.scheduler.conftest import CHANNEL

BOB = 2002  # not an admin


async def test_admins_show_change_and_reset_the_schedule_and_post_now(make_settings, server, tmp_path):
    from bot.app import build_application, running
    from bot.services import create_services

    settings = make_settings(telegram_bot_token=SecretStr(server.token), telegram_api_base_url=server.bot_api_base_url,
                             post_schedule="1h")
    services = create_services(settings)
    application = build_application(settings, services)
    async with running(application, poll_timeout=1), SandboxClient(server.url) as alice:
        service = services.poster
        shown = (await alice.ask(None, "/schedule"))["text"]
        assert "Channel: @rnnbot_verses" in shown and "every 1h (UTC-aligned), from POST_SCHEDULE" in shown
        assert "Next post: " in shown and "/schedule reset" in shown

        refused = (await alice.ask(None, "/schedule 61 * * * *"))["text"]
        assert refused.startswith("Schedule not changed: '61 * * * *' is not a valid cron expression")
        assert service.schedule.expression == "1h"

        changed = (await alice.ask(None, "/schedule 0 9 * * 1"))["text"]
        assert changed.startswith("Schedule is now cron '0 9 * * 1' (UTC), from /schedule")
        next_post = service.scheduler.get_job("post").next_run_time
        assert (next_post.astimezone(UTC).strftime("%A %H:%M"), next_post > datetime.now(UTC)) == ("Monday 09:00", True)
        assert (tmp_path / "post_schedule").read_text() == "0 9 * * 1\n"  # kept across restarts

        reset = (await alice.ask(None, "/schedule reset"))["text"]
        assert reset.startswith("Schedule is now every 1h") and not (tmp_path / "post_schedule").exists()

        not_admin = (await alice.ask(BOB, "/schedule 1s"))["text"]
        assert "only for the bot's administrators" in not_admin and service.schedule.expression == "1h"
        assert "only for the bot's administrators" in (await alice.ask(BOB, "/post_now"))["text"]

        posted = (await alice.ask(None, "/post_now", timeout=30))["text"]
        assert posted.startswith(f"Posted to {CHANNEL}:\n")
        assert [p["text"] for p in await alice.channel_posts(CHANNEL)] == [posted.split("\n", 1)[1]]
        assert "sent: " in (await alice.ask(None, "/schedule"))["text"]  # the post is listed
