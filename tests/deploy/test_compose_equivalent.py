"""What `docker compose up` runs, as local processes: migrations against PostgreSQL, `rnnbot serve`
and `rnnbot scheduler` with the compose environment, pointed at the offline Telegram sandbox.

A completion and a scheduled post are observed, both health endpoints answer and both processes'
/metrics count what they did, then SIGTERM stops both processes cleanly (exit 0 within seconds) and
the rows are in the database.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from bot.settings import Settings
from db import repositories as repo
from db.session import Database
from sandbox import SandboxClient, SandboxServer
from tests.fixtures.databases import POSTGRES_ENV
from tests.helpers import free_port, new_postgres_database

CHANNEL = "@rnnbot_verses"
STOP_WITHIN_S = 15
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not os.environ.get(POSTGRES_ENV),
                                                   reason=f"{POSTGRES_ENV} is not set")]


@pytest.fixture
def postgres_url(postgres_admin):
    """A database of its own, empty, as the compose `db` service starts."""
    with new_postgres_database(postgres_admin, "rnnbot_compose") as url:
        yield url


def compose_environment(**values: str) -> dict:
    """This process's environment without any rnnbot setting, plus the given ones (as compose would)."""
    settings = {(field.validation_alias or name).upper() for name, field in Settings.model_fields.items()}
    env = {k: v for k, v in os.environ.items() if k not in settings}
    return {**env, "OMP_NUM_THREADS": "1", "PTB_TIMEDELTA": "1", **values}


def start(args: list[str], env: dict, cwd: Path, log: Path) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen([sys.executable, "-m", "cli", *args], cwd=cwd, env=env, stdout=out,
                                stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen) -> tuple[int, float]:
    t0 = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=STOP_WITHIN_S), time.monotonic() - t0
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return -1, time.monotonic() - t0


async def wait_healthy(url: str, process: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"it exited ({process.returncode}):\n{log.read_text()[-3000:]}"
        try:
            with await asyncio.to_thread(urllib.request.urlopen, url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:  # not listening yet, or 503 (HTTPError) while starting
            pass
        await asyncio.sleep(0.5)
    raise AssertionError(f"{url} never answered 200:\n{log.read_text()[-3000:]}")


def scrape(port: int) -> dict[str, float]:
    """GET /metrics as {'name{labels}': value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        lines = response.read().decode().splitlines()
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in lines if line and line[0] != "#"}


async def test_compose_services_as_local_processes(tmp_path, postgres_url, verse_run):
    # the `bot` service's first step: migrations, against the real PostgreSQL
    migrate = subprocess.run([sys.executable, "-m", "cli", "db", "upgrade"], cwd=tmp_path, capture_output=True,
                             text=True, timeout=120, env=compose_environment(DATABASE_URL=postgres_url))
    assert migrate.returncode == 0 and "(head)" in migrate.stdout, migrate.stdout + migrate.stderr

    async with SandboxServer(port=0, channels=[CHANNEL]) as sandbox:
        health_port = free_port()
        env = compose_environment(
            TELEGRAM_BOT_TOKEN=sandbox.token, TELEGRAM_API_BASE_URL=sandbox.bot_api_base_url,
            DATABASE_URL=postgres_url, MODEL_PATH=str(verse_run),
            HEALTH_HOST="127.0.0.1", HEALTH_PORT=str(health_port),
            POST_IN_BOT="false",  # as in docker-compose.yml: the scheduler service posts
            CHANNEL_ID=CHANNEL, POST_SCHEDULE="3s", POST_CORPUS="none", POST_MIN_CHARS="10")
        # cwd: a directory without .env, so only the environment above configures them
        bot_log, scheduler_log = tmp_path / "bot.log", tmp_path / "scheduler.log"
        bot = start(["serve"], env, tmp_path, bot_log)
        # its own container in compose, with the same HEALTH_PORT; here, on one host, another port
        scheduler_port = free_port()
        scheduler = start(["scheduler"], {**env, "HEALTH_PORT": str(scheduler_port)}, tmp_path, scheduler_log)
        try:
            await wait_healthy(f"http://127.0.0.1:{health_port}/healthz", bot, bot_log)
            await wait_healthy(f"http://127.0.0.1:{scheduler_port}/healthz", scheduler, scheduler_log)
            async with SandboxClient(sandbox.url) as alice:
                reply = await alice.ask(None, "3:16 the lamb", timeout=60)
                assert reply["text"].strip(), reply
                post = await alice.wait_for_channel_post(CHANNEL, timeout=90)
                assert post["text"].strip()
            # Prometheus would scrape both: the bot counted the completion, the scheduler the post
            bot_metrics = await asyncio.to_thread(scrape, health_port)
            assert bot_metrics['rnnbot_completions_total{outcome="ok"}'] >= 1
            scheduler_metrics = await asyncio.to_thread(scrape, scheduler_port)
            assert scheduler_metrics['rnnbot_posts_total{status="sent"}'] >= 1
        finally:
            # both at once, as `docker compose stop` does; in threads, so the sandbox on this loop answers
            (bot_exit, bot_s), (scheduler_exit, scheduler_s) = await asyncio.gather(
                asyncio.to_thread(stop, bot), asyncio.to_thread(stop, scheduler))
        async with SandboxClient(sandbox.url) as observer:
            channel_posts = await observer.channel_posts(CHANNEL)
        logs = bot_log.read_text() + scheduler_log.read_text()
        assert (bot_exit, scheduler_exit) == (0, 0), logs[-4000:]
        assert bot_s < STOP_WITHIN_S and scheduler_s < STOP_WITHIN_S
        assert sandbox.token.split(":", 1)[1] not in logs  # the token never reaches a log
        assert "3:16 the lamb" not in logs  # nor what users write
        assert "posted message" in scheduler_log.read_text()
        assert "posted message" not in bot_log.read_text()  # POST_IN_BOT=false: only the scheduler posts

    # nothing lost: the completion and the post are in the database
    database = Database(postgres_url)
    try:
        with database.transaction() as session:
            counts = repo.table_counts(session)
            posts = repo.recent_posts(session)
        assert counts["prompts"] >= 1 and counts["completions"] >= 1, counts
        assert any(p.status == "sent" and p.message_id for p in posts), posts
        # every message in the channel is recorded as sent, except at most the one whose send the
        # shutdown interrupted (its row stays "claimed" with the send begun: never resent, reported)
        sent = {p.message_id for p in posts if p.status == "sent"}
        in_channel = {m["message_id"] for m in channel_posts}
        interrupted = [p for p in posts if p.status == "claimed" and p.sent_at is not None]
        assert sent <= in_channel and len(in_channel - sent) <= len(interrupted) <= 1, \
            [(p.slot, p.status, p.sent_at, p.message_id) for p in posts]
    finally:
        database.close()
