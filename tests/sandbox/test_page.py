"""The chat page in a real headless Chromium, talking to a real PTB Application through the sandbox."""

from __future__ import annotations

import os

import pytest

from sandbox.media import tiny_png
from tests.helpers import ALICE, CHANNEL, CHROMIUM, CHROMIUM_FLAGS

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium "
                                                     "(apt-get install chromium chromium-driver)"),
]


@pytest.fixture
async def page(tmp_path):
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            tmp_path / "profile", executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        try:
            tab = context.pages[0] if context.pages else await context.new_page()
            script_errors = []
            tab.on("pageerror", lambda error: script_errors.append(error))
            yield tab
            assert script_errors == [], "the page's JavaScript failed"
        finally:
            await context.close()


async def test_chat_buttons_inline_and_channel(page, sandbox_server, running_app, ptb_bot, tmp_path):
    from playwright.async_api import expect

    await page.goto(sandbox_server.url)
    bot_messages = page.locator('[data-testid="message"][data-from="bot"]')

    composer = page.get_by_test_id("composer-input")
    await composer.fill("in the beginning")
    await composer.press("Enter")
    await expect(bot_messages.last).to_contain_text("echo: in the beginning")
    await expect(page.locator('.msg.mine [data-testid="message-text"]')).to_have_text(
        ["in the beginning"])

    await composer.fill("/slow")
    await page.get_by_test_id("send-button").click()
    await expect(page.get_by_test_id("typing-indicator")).to_have_text("rnnbot is typing…")
    await expect(bot_messages.last).to_contain_text("done thinking")
    await expect(page.get_by_test_id("typing-indicator")).to_be_hidden()

    await composer.fill("/start")
    await composer.press("Enter")
    await expect(bot_messages.last).to_contain_text("Choose a temperature:")
    await bot_messages.last.get_by_role("button", name="Temperature 0.5").click()
    await expect(page.get_by_test_id("callback-toast")).to_have_text("set 0.5")
    await expect(bot_messages.last.get_by_test_id("message-text")).to_have_text(
        "Temperature set to 0.5")
    await expect(bot_messages.last.get_by_test_id("message-edited")).to_be_visible()
    await expect(bot_messages.last.get_by_test_id("inline-button")).to_have_count(0)

    await page.get_by_test_id("inline-query-input").fill("psalm")
    results = page.get_by_test_id("inline-result")
    await expect(results).to_have_count(3)
    await results.nth(1).click()
    await expect(page.locator('[data-testid="message"][data-from="user"]').last).to_contain_text(
        "via @rnnbot_sandbox_bot")

    await ptb_bot.send_photo(ALICE, tiny_png(40, 20), caption="a <b>photo</b>", parse_mode="HTML")
    photo = bot_messages.last.get_by_test_id("message-photo")
    await expect(photo).to_be_visible()
    assert await photo.evaluate("img => img.naturalWidth") == 40

    await ptb_bot.send_message(CHANNEL, "<b>Psalm</b> 23:1 &lt;script&gt;alert(1)&lt;/script&gt;",
                           parse_mode="HTML")
    post = page.get_by_test_id("channel-post").last
    await expect(post).to_contain_text("Psalm 23:1 <script>alert(1)</script>")
    await expect(post.locator("b")).to_have_text("Psalm")
    assert await page.locator("[data-testid=channel-feed] script").count() == 0
    await page.screenshot(path=tmp_path / "sandbox-page.png")
    if screenshot := os.environ.get("SANDBOX_SCREENSHOT"):
        await page.screenshot(path=screenshot)


async def test_group_chat_and_other_user(page, sandbox_server, running_app, alice):
    from playwright.async_api import expect

    await page.goto(sandbox_server.url)
    await page.get_by_test_id("user-id").fill("2002")
    await page.get_by_test_id("user-name").fill("Bob")
    await page.get_by_test_id("user-name").press("Enter")
    await page.get_by_test_id("chat-select").select_option(label="Sandbox Group")
    await expect(page.get_by_test_id("chat-title")).to_contain_text("Sandbox Group · as Bob")

    await alice.send_text(ALICE, "hello from alice", chat="group")
    await page.get_by_test_id("composer-input").fill("hello from bob")
    await page.get_by_test_id("composer-input").press("Enter")
    messages = page.get_by_test_id("message")
    await expect(messages.filter(has_text="echo: hello from bob")).to_have_count(1)
    await expect(messages.filter(has_text="hello from alice").first).to_contain_text("Alice")
    sent_by_bob = page.locator('.msg.mine')
    await expect(sent_by_bob).to_have_count(1)
    await expect(sent_by_bob).to_contain_text("hello from bob")
