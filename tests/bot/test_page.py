"""A person using the real bot through the sandbox's chat page, in a real headless Chromium."""

from __future__ import annotations

import pytest

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
