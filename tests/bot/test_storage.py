"""What the bot stores, on SQLite and on PostgreSQL ($TEST_DATABASE_URL): prompts, completions, settings,
admin flags, and /forget removing one user's rows only."""

from __future__ import annotations

import pytest

from tests.helpers import ADMIN_ID, ALICE, BOB, wait_until


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'storage.db'}"
    return request.getfixturevalue("postgres_url")


async def test_bot_storage_round_trip(start_bot, alice, admin_client, database_url):
    bot = await start_bot(database_url=database_url)
    assert bot.services.database.url.get_backend_name() == database_url.split(":")[0].split("+")[0]
    bob = {"id": BOB, "first_name": "Bob", "username": "bob"}

    await alice.ask(None, "/length 30")
    await alice.ask(None, "the quick ")
    await alice.ask(bob, "the lazy ")
    await alice.wait_for_inline_answer(await alice.inline_query(None, "over "))
    await admin_client.ask(None, "/verse")
    await wait_until(lambda: bot.counts()["completions"] == 6, what="six completions")

    await bot.settled()
    counts = bot.counts()
    assert (counts["users"], counts["prompts"]) == (3, 4)
    alice_prompts = bot.prompts(ALICE)
    assert [p.text for p in alice_prompts] == ["over ", "the quick "]
    assert all(c.latency_ms is not None and c.max_chars == 30 for p in alice_prompts for c in p.completions)
    assert bot.user(ALICE).username == "alice" and not bot.user(ALICE).is_admin
    assert bot.user(ADMIN_ID).is_admin

    question = await alice.ask(None, "/forget")
    await alice.press_button(question, data=f"forget:yes:{ALICE}")
    await alice.wait_for_edit(question)
    await bot.settled()
    counts = bot.counts()
    assert (counts["users"], counts["prompts"], counts["completions"]) == (2, 2, 2)
    assert bot.user(ALICE) is None and len(bot.prompts(BOB)) == 1
