"""A person using the real bot through the sandbox's chat page, in a real headless Chromium."""

from __future__ import annotations

import pytest

from bot.handlers.neuron import COLUMNS
from neurons.png import png_size
from tests.helpers import ALICE, CHROMIUM, CHROMIUM_FLAGS

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium "
                                                     "(apt-get install chromium chromium-driver)"),
]


@pytest.fixture
async def page(tmp_path):
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                                   args=CHROMIUM_FLAGS)
        try:
            tab = await browser.new_page()
            script_errors = []
            tab.on("pageerror", lambda error: script_errors.append(error))
            yield tab
            assert script_errors == [], "the page's JavaScript failed"
        finally:
            await browser.close()


async def test_prompt_and_settings_button_in_the_browser(page, running_bot, sandbox_server):
    from playwright.async_api import expect

    await page.goto(sandbox_server.url)
    bot_messages = page.locator('[data-testid="message"][data-from="bot"]')
    composer = page.get_by_test_id("composer-input")

    await composer.fill("the quick brown ")
    await composer.press("Enter")
    await expect(bot_messages).to_have_count(1, timeout=15_000)
    await expect(bot_messages.last.locator("b, strong").first).to_have_text("the quick brown ")  # the prompt
    reply = await bot_messages.last.get_by_test_id("message-text").inner_text()
    assert len(reply) > len("the quick brown ")  # and the model's continuation after it

    await composer.fill("/settings")
    await page.get_by_test_id("send-button").click()
    await expect(bot_messages.last).to_contain_text("Temperature: 0.8")
    await bot_messages.last.get_by_role("button", name="1.2").click()
    await expect(page.get_by_test_id("callback-toast")).to_have_text("Temperature set to 1.2")
    await expect(bot_messages.last.get_by_test_id("message-text")).to_contain_text("Temperature: 1.2")
    await expect(bot_messages.last.get_by_role("button", name="✓ 1.2")).to_be_visible()
    await running_bot.settled()
    assert running_bot.user(ALICE).temperature == 1.2


async def test_reply_to_a_message_with_neuron_in_the_browser(page, running_bot, sandbox_server, alice):
    from playwright.async_api import expect

    await page.goto(sandbox_server.url)
    await expect(page.get_by_test_id("chats-note")).to_have_text(
        "Chats are kept in memory only: a restart of the sandbox empties them.")
    composer = page.get_by_test_id("composer-input")
    await composer.fill("   ")
    await composer.press("Enter")
    await expect(page.get_by_test_id("error")).to_have_text(
        "Type some text first: a message of only spaces is not sent.")
    assert ALICE not in {c["id"] for c in (await alice.state())["chats"]}  # nothing was sent

    text = 'the lazy dog "jumps" over the quick brown fox.'
    await alice.send_text(None, text)  # a message to reply to, as in a real chat
    mine = page.locator('.msg.mine')
    await expect(mine).to_have_count(1)
    await mine.first.get_by_test_id("reply-action").click()
    await expect(page.get_by_test_id("reply-preview")).to_contain_text("Reply to Alice" + text)
    await composer.fill("/neuron")
    await composer.press("Enter")
    await expect(page.get_by_test_id("reply-preview")).to_be_hidden()

    photo = page.locator('[data-testid="message"][data-from="bot"] [data-testid="message-photo"]')
    await expect(photo).to_be_visible(timeout=60_000)
    # The bot got the command as a reply to that message, and drew that message's text.
    log = (await alice.updates())["log"]
    command = next(u["message"] for u in log if u.get("message", {}).get("text") == "/neuron")
    assert command["reply_to_message"]["text"] == text
    await expect(page.locator('.msg.mine [data-testid="reply-quote"]')).to_contain_text(text)
    [sent] = [m for m in await alice.messages(ALICE) if "photo" in m]
    assert (sent["photo"][-1]["width"], sent["photo"][-1]["height"]) == png_size(text, COLUMNS)
