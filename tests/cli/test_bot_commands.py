"""`rnnbot serve` and `rnnbot sandbox` as real processes: start, answer, stop cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import re

import pytest

from bot.handlers.errors import SORRY
from sandbox import SandboxClient
from tests.helpers import ALICE, bot_env, run_cli, start_process, stop_process


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


def test_serve_does_not_migrate_it_says_what_to_run(tmp_path, trained_run):
    env = bot_env(tmp_path, TELEGRAM_BOT_TOKEN="123:abc", MODEL_PATH=str(trained_run),
                  DATABASE_URL=f"sqlite:///{tmp_path / 'never-migrated.db'}")
    result = run_cli("serve", cwd=tmp_path, env=env)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    # which database (logged first), then one line that says what to run
    logged, error = result.stderr.strip().splitlines()
    assert logged.endswith(f"INFO bot.services: database: sqlite:///{tmp_path / 'never-migrated.db'}")
    assert error == (f"rnnbot: error: database sqlite:///{tmp_path / 'never-migrated.db'} has no rnnbot tables "
                     "yet: run `rnnbot db upgrade` first")
    result = run_cli("serve", "--database-url", f"sqlite:///{tmp_path / 'serve.db'}", cwd=tmp_path,
                     env={**env, "TELEGRAM_API_BASE_URL": "http://127.0.0.1:9/api"})
    assert "TELEGRAM_API_BASE_URL must end with /bot" in result.stderr  # past the check: the flag's database


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
    # a database nobody migrated: the sandbox, a local try-out, migrates it itself
    env = {**bot_env(tmp_path, MODEL_PATH=str(trained_run)), "DATABASE_URL": f"sqlite:///{tmp_path / 'new.db'}"}
    process = await start_process("sandbox", "--port", "0", env=env, cwd=tmp_path)
    try:
        line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        url = re.search(r"open (http://127\.0\.0\.1:\d+)", line).group(1)
        async with SandboxClient(url) as alice:
            assert (await alice.ask(None, "/start"))["text"].startswith("Hello, Alice!")
            stats = await alice.ask(None, "/stats")  # Alice is the sandbox's admin by default
            assert "prompts: " in stats["text"]
            chat = await alice.messages(ALICE)
    finally:
        rc, out, err = await stop_process(process)
    assert rc == 0, err
    assert (tmp_path / "new.db").exists()
    assert "chats kept in data/sandbox-chats.json" in out

    # Started again, the page shows the same chat (kept under data/ by default).
    process = await start_process("sandbox", "--port", "0", env=env, cwd=tmp_path)
    try:
        line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        async with SandboxClient(re.search(r"open (http://127\.0\.0\.1:\d+)", line).group(1)) as alice:
            assert await alice.messages(ALICE) == chat
    finally:
        rc, out, err = await stop_process(process)
    assert rc == 0, err


@pytest.mark.slow
@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_logs_keep_the_token_and_users_text_out_in_either_format(sandbox_server, tmp_path, trained_run,
                                                                       log_format):
    env = bot_env(tmp_path, TELEGRAM_BOT_TOKEN=sandbox_server.token,
                  TELEGRAM_API_BASE_URL=sandbox_server.bot_api_base_url, MODEL_PATH=str(trained_run))
    (tmp_path / ".env").write_text(f"LOG_FORMAT={log_format}\n", encoding="utf-8")  # as a user would set it
    secret_words = "my very private words "
    process = await start_process("-v", "serve", env=env, cwd=tmp_path)  # DEBUG: everything that is logged
    try:
        async with SandboxClient(sandbox_server.url) as alice:
            await alice.ask(None, "/start", timeout=60)
            await alice.ask(None, secret_words, timeout=20)
            await alice.inject_fault("sendMessage", 502, count=1)  # an error path, logged with a traceback
            sent = await alice.send_text(None, secret_words + "again ")
            await alice.wait_for_bot_reply(ALICE, after=sent, predicate=lambda m: m["text"] == SORRY)
    finally:
        rc, out, err = await stop_process(process)
    assert rc == 0, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) > 10, err
    for text in (sandbox_server.token, sandbox_server.token.split(":", 1)[1], "very private"):
        assert text not in out + err
    if log_format == "json":
        records = [json.loads(line) for line in lines]  # every line is one JSON object
        assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
        [failure] = [r for r in records if r["message"].startswith("handling update")]
        # the frames of the traceback, without exception messages (they can quote the user's text)
        assert failure["level"] == "ERROR" and isinstance(failure["update_id"], int)
        assert '  File "' in failure["message"]
        assert any(r["level"] == "DEBUG" for r in records)
    else:
        assert re.match(r"\d\d:\d\d:\d\d INFO ", lines[0]) and not lines[0].startswith("{")


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


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a GPU")
@pytest.mark.parametrize("device", ["cuda", "cuda:2"])
def test_sandbox_asked_for_a_gpu_it_lacks_is_one_clear_error(tmp_path, trained_run, device):
    env = bot_env(tmp_path, MODEL_PATH=str(trained_run), DEVICE=device)
    result = run_cli("sandbox", "--port", "0", cwd=tmp_path, env=env)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    [line] = [x for x in result.stderr.splitlines() if x.startswith("rnnbot:")]
    assert line.startswith(f"rnnbot: error: device '{device}': no CUDA GPU is available here (")
    assert line.endswith("); use cpu or auto")
