"""`rnnbot serve` and `rnnbot sandbox` as real processes: start, answer, stop cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import re

import pytest

from sandbox import SandboxClient
from tests.helpers import bot_env, run_cli, start_process, stop_process


def test_serve_without_token_is_one_clear_error(tmp_path, trained_run):
    result = run_cli("serve", cwd=tmp_path, env=bot_env(tmp_path, MODEL_PATH=str(trained_run)))
    assert result.returncode == 2
    assert result.stderr.strip() == ("rnnbot: error: TELEGRAM_BOT_TOKEN is not set (get a token from @BotFather, "
                                     "or try `rnnbot sandbox`)")


def test_serve_without_model_is_one_clear_error(tmp_path):
    env = bot_env(tmp_path, TELEGRAM_BOT_TOKEN="123:abc", MODEL_PATH=str(tmp_path / "no-such-run"),
                  TELEGRAM_API_BASE_URL="http://127.0.0.1:9/bot")
    result = run_cli("serve", cwd=tmp_path, env=env)
    assert result.returncode == 2
    [line] = [x for x in result.stderr.splitlines() if x.startswith("rnnbot:")]
    assert line.startswith("rnnbot: error: no model to serve: MODEL_PATH=") and "no-such-run" in line
    assert "Traceback" not in result.stderr


def test_serve_with_a_bad_base_url_is_one_clear_error(tmp_path, trained_run):
    env = bot_env(tmp_path, TELEGRAM_BOT_TOKEN="123:abc", MODEL_PATH=str(trained_run),
                  TELEGRAM_API_BASE_URL="http://127.0.0.1:9/api")
    result = run_cli("serve", cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert "TELEGRAM_API_BASE_URL must end with /bot" in result.stderr


@pytest.mark.slow
async def test_serve_answers_then_exits_0_on_sigterm(sandbox_server, tmp_path, trained_run):
    env = bot_env(tmp_path, TELEGRAM_BOT_TOKEN=sandbox_server.token,
                  TELEGRAM_API_BASE_URL=sandbox_server.bot_api_base_url,
                  MODEL_PATH=str(trained_run), ADMIN_USER_IDS="1001")
    process = await start_process("-v", "serve", env=env, cwd=tmp_path)
    try:
        async with SandboxClient(sandbox_server.url) as alice:
            greeting = await alice.ask(None, "/start", timeout=60)  # imports and model load first
            reply = await alice.ask(None, "the quick very private ", timeout=20)
    finally:
        rc, out, err = await stop_process(process)
    assert greeting["text"].startswith("Hello, Alice!")
    assert reply["text"].startswith("the quick very private ")
    assert rc == 0, err
    assert "Application.stop() complete" in err
    assert sandbox_server.token.split(":", 1)[1] not in out + err  # not even at -v (DEBUG)
    assert "very private" not in err
    assert (tmp_path / "serve.db").exists()


@pytest.mark.slow
async def test_sandbox_command_prints_its_url_and_runs_the_bot(tmp_path, trained_run):
    env = bot_env(tmp_path, MODEL_PATH=str(trained_run))
    process = await start_process("sandbox", "--port", "0", env=env, cwd=tmp_path)
    try:
        line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        url = re.search(r"open (http://127\.0\.0\.1:\d+)", line).group(1)
        async with SandboxClient(url) as alice:
            assert (await alice.ask(None, "/start"))["text"].startswith("Hello, Alice!")
            stats = await alice.ask(None, "/stats")  # Alice is the sandbox's admin by default
            assert "prompts: " in stats["text"]
    finally:
        rc, out, err = await stop_process(process)
    assert rc == 0, err
    assert (tmp_path / "serve.db").exists()


@pytest.mark.slow
@pytest.mark.parametrize("command", ["serve", "scheduler", "post"])
async def test_a_token_telegram_rejects_is_not_printed(command, sandbox_server, tmp_path, verse_run):
    secret = "rejected-secret-half-0123456789"
    env = bot_env(tmp_path, TELEGRAM_BOT_TOKEN=f"123456:{secret}", MODEL_PATH=str(verse_run),
                  TELEGRAM_API_BASE_URL=sandbox_server.bot_api_base_url, CHANNEL_ID="@rnnbot_verses",
                  POST_CORPUS="none")
    result = await asyncio.to_thread(run_cli, "-v", command, cwd=tmp_path, env=env)
    assert result.returncode == 2, result.stderr
    assert secret not in result.stdout + result.stderr
    [line] = [x for x in result.stderr.splitlines() if x.startswith("rnnbot:")]
    assert line.startswith("rnnbot: error: the Bot API at ") and "refused TELEGRAM_BOT_TOKEN" in line
    assert "123456:***" in line  # the bot id stays: it says which bot
