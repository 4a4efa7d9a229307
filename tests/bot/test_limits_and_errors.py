"""Rate limit, busy queue, Telegram's 429, errors, admin commands, HTML-looking model output, logs."""

from __future__ import annotations

import asyncio
import logging
import shutil

import pytest
import torch
from safetensors.torch import save_file

from bot.handlers.errors import SORRY
from bot.handlers.generation import BUSY
from tests.helpers import ADMIN_ID, ALICE, bot_texts, free_port, tiny_config, wait_until

HTML_CORPUS = "<b>a & b</b> *x* <i>c</i> && <<>> _y_\n"


@pytest.fixture(scope="session")
def html_run(tmp_path_factory):
    """A model whose every output is HTML-looking: trained briefly on markup characters only."""
    from trainer.train import Trainer

    tmp = tmp_path_factory.mktemp("html")
    corpus = tmp / "html.txt"
    corpus.write_text(HTML_CORPUS * 100, encoding="utf-8")
    cfg = tiny_config(tmp, corpus, max_steps=20, eval_every=10)
    Trainer.start(cfg).run()
    return tmp / "run"


async def test_rate_limit_is_friendly_and_stores_nothing_extra(start_bot, alice):
    bot = await start_bot(rate_limit_count=2, rate_limit_window_s=60)
    for prompt in ("the ", "lazy "):
        assert (await alice.ask(None, prompt))["text"].startswith(prompt)
    refusal = await alice.ask(None, "dog ")
    assert refusal["text"].startswith("Easy there! You can ask for 2 completions every 60 seconds.")
    assert "try again in" in refusal["text"]
    # other users have their own allowance; settings still work for Alice
    assert (await alice.ask({"id": 1003, "first_name": "Carol"}, "fox "))["text"].startswith("fox ")
    assert (await alice.ask(None, "/length 50"))["text"] == "Length set to 50 characters."
    await bot.settled()
    assert len(bot.prompts(ALICE)) == 2


async def test_full_queue_answers_busy(start_bot, alice):
    bot = await start_bot(queue_size=1, max_batch=1)
    # Hold the worker so requests stay queued: the first fills the queue, the rest must be refused.
    await asyncio.to_thread(bot.services.worker.stop)
    users = [{"id": 2000 + i, "first_name": f"User{i}"} for i in range(4)]
    sent = [await alice.send_text(user, "the quick ") for user in users]
    chats = [message["chat"]["id"] for message in sent]
    busy = await asyncio.gather(*(alice.wait_for_bot_reply(chat, predicate=lambda m: m["text"] == BUSY)
                                  for chat in chats[1:]))
    assert len(busy) == 3
    bot.services.worker.start()
    first = await alice.wait_for_bot_reply(chats[0])
    assert first["text"].startswith("the quick ") and len(first["text"]) > len("the quick ")
    # every prompt is stored with what became of it; only the served one has a completion
    await wait_until(lambda: bot.counts()["completions"] == 1, what="the one completion")
    outcomes = [(p.outcome, len(p.completions)) for user in users for p in bot.prompts(user["id"])]
    assert sorted(outcomes) == [("busy", 0), ("busy", 0), ("busy", 0), ("sent", 1)]


async def test_flood_limit_429_is_waited_out(running_bot, alice):
    await alice.inject_fault("sendMessage", 429, retry_after=1)
    reply = await alice.ask(None, "the quick ", timeout=15)
    assert reply["text"].startswith("the quick ")
    calls = [c for c in await alice.calls("sendMessage")]
    assert [c["error_code"] for c in calls if not c["ok"]] == [429]
    assert calls[-1]["ok"]
    assert bot_texts(await alice.messages(ALICE)) == [reply["text"]]  # sent once, after the wait


async def test_error_is_logged_and_the_user_told(running_bot, alice, caplog):
    caplog.set_level(logging.INFO)
    await alice.inject_fault("sendMessage", 400, "Bad Request: chat not found", count=1)
    sent = await alice.send_text(None, "the secret prompt text ")
    sorry = await alice.wait_for_bot_reply(ALICE, after=sent)
    assert sorry["text"] == SORRY
    # The completion never reached her: the prompt says so, and no completion is stored as served.
    await running_bot.settled()
    [prompt] = running_bot.prompts(ALICE)
    assert (prompt.outcome, prompt.completions) == ("failed", [])
    failures = [r for r in caplog.records if r.name == "bot.handlers.errors"]
    assert failures and "BadRequest" in failures[0].getMessage()
    assert "secret prompt" not in caplog.text
    # and the bot keeps working
    assert (await alice.ask(None, "/start"))["text"].startswith("Hello")


async def test_html_looking_model_output_is_escaped(start_bot, alice, html_run):
    bot = await start_bot(model_path=str(html_run), default_length=300)
    reply = await alice.ask(None, "<b>")  # the sandbox refuses unescaped HTML with 400
    completion = reply["text"][len("<b>"):]
    assert len(completion) == 300 and set(completion) & set("<>&*_")
    formatting = [e["type"] for e in reply["entities"] if e["type"] in ("bold", "italic", "underline", "code")]
    assert formatting == ["bold"]  # only the prompt is bold: the model's "<b>" and "<i>" stayed text
    await bot.settled()
    assert bot.prompts(ALICE)[0].completions[0].text == completion
    assert all(c["ok"] for c in await alice.calls("sendMessage"))


async def test_admin_commands_refuse_others(running_bot, alice):
    models_before = running_bot.services.models.get(None)
    for command in ("/stats", "/reload"):
        reply = await alice.ask(None, command)
        assert reply["text"] == "Sorry, that command is only for the bot's administrators."
    assert running_bot.services.models.get(None) is models_before  # /reload did not run


async def test_admin_stats_and_reload(running_bot, alice, admin_client):
    await alice.ask(None, "the ")
    await wait_until(lambda: running_bot.counts()["completions"] == 1, what="the request stored")  # after its reply
    stats = (await admin_client.ask(None, "/stats"))["text"]
    assert "prompts: 1" in stats and "completions: 1" in stats and "batches run: 1" in stats
    assert f"{running_bot.services.models.default} · step" in stats

    before = running_bot.services.models.get(None)
    reply = await admin_client.ask(None, "/reload", timeout=30)
    assert reply["text"].startswith("Reloaded:") and "(default)" in reply["text"]
    assert running_bot.services.models.get(None) is not before
    assert (await alice.ask(None, "the "))["text"].startswith("the ")  # serving from the new one
    await admin_client.ask(None, "the ")
    await wait_until(lambda: running_bot.user(ADMIN_ID), what="the admin's request stored")
    assert running_bot.user(ADMIN_ID).is_admin and not running_bot.user(ALICE).is_admin


async def test_token_never_reaches_the_logs(running_bot, alice, admin_client, caplog, sandbox_server):
    caplog.set_level(logging.DEBUG)  # everything, as `rnnbot -v serve` would log
    marker = "the quick brown private words "
    await alice.ask(None, marker)
    await alice.ask(None, "/settings")
    await alice.wait_for_inline_answer(await alice.inline_query(None, "the lazy "))
    await admin_client.ask(None, "/stats")
    await alice.inject_fault("sendMessage", 502, count=1)  # an error path, logged with a traceback
    sent = await alice.send_text(None, "the ")
    await alice.wait_for_bot_reply(ALICE, after=sent, predicate=lambda m: m["text"] == SORRY)
    await alice.inject_fault("getUpdates", 500, count=1)  # a polling error
    await alice.ask(None, "/start")
    assert caplog.records, "nothing was logged: the test would prove nothing"
    logged = caplog.text + "".join(r.exc_text or "" for r in caplog.records)
    assert sandbox_server.token not in logged
    assert sandbox_server.token.split(":", 1)[1] not in logged
    assert marker not in logged  # users' text is not logged either


async def test_health_endpoint_runs_with_the_bot(start_bot):
    import aiohttp

    port = free_port()
    bot = await start_bot(health_port=port, health_host="127.0.0.1")
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/healthz") as response:
        body = await response.json()
    assert response.status == 200 and body["ok"] and body["database"] is True
    assert body["models"] == [bot.services.models.default]


async def test_inline_mode_counts_every_completion_against_the_rate_limit(start_bot, alice):
    """Three completions per query cost three of the user's allowance; with fewer left, fewer come."""
    bot = await start_bot(rate_limit_count=5, rate_limit_window_s=60)
    first = await alice.wait_for_inline_answer(await alice.inline_query(None, "the lazy "))
    assert len(first["results"]) == 3
    second = await alice.wait_for_inline_answer(await alice.inline_query(None, "the quick "))
    assert len(second["results"]) == 2  # what was left of the five
    refused = await alice.wait_for_inline_answer(await alice.inline_query(None, "the dog "))
    assert refused["results"] == [] and "Too many requests" in refused["button"]["text"]
    assert "Easy there!" in (await alice.ask(None, "fox "))["text"]  # chat and inline share the allowance
    await bot.settled()
    assert sum(len(p.completions) for p in bot.prompts(ALICE)) == 5


async def test_reload_of_a_foreign_file_keeps_the_old_models_and_says_why(start_bot, admin_client, trained_run,
                                                                           tmp_path):
    run = shutil.copytree(trained_run, tmp_path / "reloaded")
    harness = await start_bot(model_path=run)
    before = harness.services.models.get(None)
    save_file({"w": torch.zeros(2)}, str(run / "best.safetensors"), metadata={"format": "pt"})
    reply = (await admin_client.ask(None, "/reload", timeout=30))["text"]
    assert reply.startswith("Reload failed, still serving the old models: ") and "not an rnnbot checkpoint" in reply
    assert harness.services.models.get(None) is before
