"""`rnnbot serve` and `rnnbot sandbox` as real processes: start, answer, stop cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys

import pytest

from sandbox import SandboxClient
from tests.helpers import run_cli


def bot_env(tmp_path, **values) -> dict:
    """The process's environment: nothing inherited that configures the bot, plus `values`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TELEGRAM_", "ADMIN_", "DATABASE_", "MODEL_", "CHANNEL_", "HEALTH_", "WEBHOOK_"))}
    env.update(OMP_NUM_THREADS="1", DATABASE_URL=f"sqlite:///{tmp_path / 'serve.db'}", **values)
    return env


async def start_process(*args: str, env: dict, cwd) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(sys.executable, "-m", "cli", *args, cwd=cwd, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def stop_process(process: asyncio.subprocess.Process, timeout: float = 10.0) -> tuple[int, str, str]:
    process.send_signal(signal.SIGTERM)
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.communicate()
        raise AssertionError(f"still running {timeout} s after SIGTERM") from None
    return process.returncode, out.decode(), err.decode()


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
async def test_serve_answers_then_exits_0_on_sigterm(sandbox, tmp_path, trained_run):
    env = bot_env(tmp_path, TELEGRAM_BOT_TOKEN=sandbox.token, TELEGRAM_API_BASE_URL=sandbox.bot_api_base_url,
                  MODEL_PATH=str(trained_run), ADMIN_USER_IDS="1001")
    process = await start_process("-v", "serve", env=env, cwd=tmp_path)
    try:
        async with SandboxClient(sandbox.url) as alice:
            greeting = await alice.ask(None, "/start", timeout=60)  # imports and model load first
            reply = await alice.ask(None, "the quick very private ", timeout=20)
    finally:
        rc, out, err = await stop_process(process)
    assert greeting["text"].startswith("Hello, Alice!")
    assert reply["text"].startswith("the quick very private ")
    assert rc == 0, err
    assert "Application.stop() complete" in err
    assert sandbox.token.split(":", 1)[1] not in out + err  # not even at -v (DEBUG)
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
