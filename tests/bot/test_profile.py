"""What Telegram shows about the bot: menus per scope, descriptions, the inline-mode warning."""

from __future__ import annotations

import logging

from bot.profile import DESCRIPTION, SHORT_DESCRIPTION
from sandbox import SandboxClient
from tests.helpers import ADMIN_ID, ALICE


def names(commands: list[dict]) -> list[str]:
    return [c["command"] for c in commands]


async def test_admins_get_their_commands_in_their_own_menu(running_bot, alice, admin_client, sandbox_server):
    state = sandbox_server.state
    await alice.ask(None, "/start")
    assert "complete" in names(state.commands_for(ALICE)) and "stats" not in names(state.commands_for(ALICE))
    # the admin had never written to the bot when it started, so Telegram refused their chat's menu
    # then; their first message sets it
    assert "stats" not in names(state.commands_for(ADMIN_ID))
    await admin_client.ask(None, "/start")
    admin_menu = names(state.commands_for(ADMIN_ID))
    assert {"complete", "stats", "reload"} <= set(admin_menu)
    assert "stats" not in names(state.commands_for(ALICE))  # still only theirs
    # what the page shows each of them
    assert "stats" in str((await admin_client.view())["commands"])
    assert "stats" not in str((await alice.view())["commands"])


async def test_an_admin_known_at_start_gets_the_menu_at_once(start_bot, sandbox_server):
    async with SandboxClient(sandbox_server.url, user_id=ADMIN_ID, first_name="Ada") as admin:
        await admin.send_text(None, "hello")  # before the bot runs: their chat exists
    await start_bot(channel_id="@rnnbot_verses")
    admin_menu = names(sandbox_server.state.commands_for(ADMIN_ID))
    assert {"stats", "reload", "post_now", "schedule"} <= set(admin_menu)  # posting commands with a channel


async def test_descriptions_are_set_and_inline_mode_is_checked(start_bot, sandbox_server, caplog):
    caplog.set_level(logging.WARNING, logger="bot.profile")
    await start_bot()
    assert sandbox_server.state.descriptions == {"": DESCRIPTION}
    assert sandbox_server.state.short_descriptions == {"": SHORT_DESCRIPTION}
    assert len(DESCRIPTION) <= 512 and len(SHORT_DESCRIPTION) <= 120  # Telegram's limits
    assert not [r for r in caplog.records if "inline mode" in r.getMessage()]  # the sandbox has it on


async def test_a_bot_without_inline_mode_is_told_how_to_turn_it_on(start_bot, sandbox_server, caplog):
    sandbox_server.sandbox.inline_mode = False  # as a bot @BotFather never gave /setinline
    caplog.set_level(logging.WARNING, logger="bot.profile")
    await start_bot()
    [warning] = [r.getMessage() for r in caplog.records if "inline mode" in r.getMessage()]
    assert "@BotFather" in warning and "/setinline" in warning and "@rnnbot_sandbox_bot" in warning
