"""`rnnbot post` and `rnnbot scheduler` as real processes: dry run, posting, SIGTERM, SIGKILL mid-send,
two scheduler processes on one PostgreSQL database."""

from __future__ import annotations

import asyncio
import os
import signal
import urllib.request
from pathlib import Path

import pytest

from bot.scheduler.candidates import VERSE
from db import repositories as repo
from db.session import Database
from tests.helpers import CHANNEL, all_posts, check_exactly_once, free_port, run_cli, sandbox_env, start_cli, until


def test_dry_run_prints_a_verse_and_posts_nothing(scheduler_env, tmp_path):
    # No token and no channel: a dry run needs neither, and records no candidates.
    proc = run_cli("post", "--dry-run", cwd=tmp_path, env=scheduler_env)
    assert proc.returncode == 0, proc.stderr
    [verse] = proc.stdout.splitlines()
    assert VERSE.match(verse) and len(verse) <= 80
    assert "dry run: not posted" in proc.stderr
    with Database(scheduler_env["DATABASE_URL"]) as database, database.transaction() as session:
        counts = repo.table_counts(session)
    assert counts["posts"] == counts["generations"] == 0


def test_configuration_errors_are_one_line(scheduler_env, tmp_path):
    proc = run_cli("post", cwd=tmp_path, env=scheduler_env)
    assert (proc.returncode, proc.stderr.strip()) == (
        2, "rnnbot: error: CHANNEL_ID is not set: there is no channel to post to (try --dry-run)")
    proc = run_cli("scheduler", cwd=tmp_path, env={**scheduler_env, "CHANNEL_ID": "@x", "TELEGRAM_BOT_TOKEN": "1:x"})
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith(
        "rnnbot: error: CHANNEL_ID must be a numeric chat id")
    proc = run_cli("scheduler", cwd=tmp_path, env={**scheduler_env, "CHANNEL_ID": "@rnnbot_verses",
                                                   "TELEGRAM_BOT_TOKEN": "1:x", "POST_SCHEDULE": "61 * * * *"})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("rnnbot: error: POST_SCHEDULE: '61 * * * *' is not a valid")


async def test_post_posts_once_and_the_scheduler_stops_on_sigterm(scheduler_env, tmp_path, sandbox_server,
                                                                   alice_in_chat):
    post = await start_cli(sandbox_env(scheduler_env, sandbox_server), tmp_path, "post")
    assert await asyncio.wait_for(post.wait(), 60) == 0, (tmp_path / "cli.log").read_text()
    [message] = await alice_in_chat.channel_posts(CHANNEL)
    assert message["text"] in (tmp_path / "cli.log").read_text()

    scheduler = await start_cli(sandbox_env(scheduler_env, sandbox_server, POST_SCHEDULE="1s"), tmp_path, "scheduler")
    await alice_in_chat.wait_for_channel_post(CHANNEL, lambda m: m["message_id"] > message["message_id"], timeout=60)
    scheduler.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(scheduler.wait(), 30) == 0
    with Database(scheduler_env["DATABASE_URL"]) as database:
        await check_exactly_once(alice_in_chat, database)


@pytest.mark.slow
async def test_scheduler_killed_mid_send_is_recovered_without_duplicates(scheduler_env, tmp_path, sandbox_server,
                                                                          alice_in_chat):
    """SIGKILL while a send is in flight, then restart: the slot is recorded failed (it may or may
    not have arrived, so it is never resent), later slots are posted, nothing is posted twice."""
    database = Database(scheduler_env["DATABASE_URL"])
    database.upgrade()
    await alice_in_chat.set_latency(60, "sendMessage")  # every send hangs until the process is killed
    first = await start_cli(sandbox_env(scheduler_env, sandbox_server, POST_SCHEDULE="1s", POST_SEND_TIMEOUT_S="30"),
                            tmp_path, "scheduler")

    def sending():
        return [p for p in all_posts(database) if p.status == "claimed" and p.sent_at is not None]

    [interrupted] = await until(sending, 60, "a send in flight")
    first.send_signal(signal.SIGKILL)
    assert await asyncio.wait_for(first.wait(), 10) == -signal.SIGKILL
    await alice_in_chat.set_latency(0, "sendMessage")

    # A stale send is given up 1 + 4 x 1 = 5 s after it began (POST_RETRY_WINDOW_S + 4 x POST_SEND_TIMEOUT_S).
    second = await start_cli(sandbox_env(scheduler_env, sandbox_server, POST_SCHEDULE="1s", POST_RETRY_WINDOW_S="1",
                                         POST_SEND_TIMEOUT_S="1"), tmp_path, "scheduler")

    def recovered():
        posts = all_posts(database)
        failed = [p for p in posts if p.id == interrupted.id and p.status == "failed"]
        return failed and len([p for p in posts if p.status == "sent" and p.slot > interrupted.slot]) >= 2

    await until(recovered, 60, "the interrupted slot recorded and two later posts")
    second.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(second.wait(), 30) == 0
    rows = await check_exactly_once(alice_in_chat, database)
    [failed] = [r for r in rows if r.id == interrupted.id]
    assert failed.error.startswith("interrupted while sending")
    assert interrupted.generation.text not in [m["text"] for m in await alice_in_chat.channel_posts(CHANNEL)]
    database.close()


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_two_scheduler_processes_on_postgresql(scheduler_env, tmp_path, sandbox_server, alice_in_chat,
                                                     database_url):
    settings = sandbox_env(scheduler_env, sandbox_server, POST_SCHEDULE="1s", DATABASE_URL=database_url)
    with Database(database_url) as database:
        database.upgrade()  # before both start, so neither waits on the other's migration
    schedulers = [await start_cli(settings, tmp_path, "scheduler", log_name=f"scheduler{i}.log") for i in (1, 2)]
    await alice_in_chat.wait_for_channel_post(CHANNEL, timeout=60)
    await asyncio.sleep(4)
    for scheduler in schedulers:
        scheduler.send_signal(signal.SIGTERM)
    assert [await asyncio.wait_for(s.wait(), 30) for s in schedulers] == [0, 0]
    logs = [(tmp_path / f"scheduler{i}.log").read_text() for i in (1, 2)]
    assert all("scheduler running" in log for log in logs)  # both really ran
    with Database(database_url) as database:
        rows = await check_exactly_once(alice_in_chat, database)
    assert len([r for r in rows if r.status == "sent"]) >= 4


async def test_the_scheduler_serves_health_and_metrics(scheduler_env, tmp_path, sandbox_server, alice_in_chat):
    from prometheus_client.parser import text_string_to_metric_families

    port = free_port()
    scheduler = await start_cli(sandbox_env(scheduler_env, sandbox_server, POST_SCHEDULE="1s", HEALTH_PORT=str(port)),
                                tmp_path, "scheduler")
    try:
        await alice_in_chat.wait_for_channel_post(CHANNEL, timeout=60)

        def metrics() -> dict | None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                    text = response.read().decode()
            except OSError:
                return None
            samples = {(s.name, tuple(s.labels.values())): s.value
                       for family in text_string_to_metric_families(text) for s in family.samples}
            return samples if samples[("rnnbot_posts_total", ("sent",))] >= 1 else None

        samples = await until(metrics, 30, "a sent post in /metrics")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            assert response.status == 200  # what compose's healthcheck (python -m bot.health) asks
    finally:
        scheduler.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(scheduler.wait(), 30) == 0
    assert 0 <= samples[("rnnbot_seconds_since_last_post", ())] < 600
    assert samples[("rnnbot_generated_characters_total", ())] > 0  # candidates came from the worker
    assert samples[("rnnbot_worker_batch_size_count", ())] >= 1
    assert "database: sqlite:///" in (tmp_path / "cli.log").read_text()  # it says which database


async def test_sigterm_while_the_model_loads_exits_0(scheduler_env, tmp_path, sandbox_server):
    """`docker compose down` right after `up` stops the scheduler while it loads its model: that is a
    clean stop (exit 0), not death by SIGTERM (143). The model is a FIFO, so loading blocks in open()
    until the test opens the other end: the signal surely arrives mid-load."""
    fifo = tmp_path / "slow.safetensors"
    os.mkfifo(fifo)
    log_file = tmp_path / "cli.log"
    scheduler = await start_cli(sandbox_env(scheduler_env, sandbox_server, MODEL_PATH=str(fifo)), tmp_path,
                                "scheduler")
    await until(lambda: waiting_for_a_writer(scheduler.pid), 60, "the scheduler to open its model file")
    scheduler.send_signal(signal.SIGTERM)
    await asyncio.sleep(0.5)
    assert scheduler.returncode is None  # still loading: the signal did not kill it
    os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # loading goes on (and fails: not a file)
    assert await asyncio.wait_for(scheduler.wait(), 30) == 0, log_file.read_text()
    output = log_file.read_text()
    assert "the scheduler stopped by SIGTERM while starting" in output
    assert "scheduler running" not in output and "Traceback" not in output


def waiting_for_a_writer(pid: int) -> bool:
    """Whether the process's main thread is blocked opening a FIFO that has no writer yet (Linux)."""
    try:
        return Path(f"/proc/{pid}/wchan").read_text() == "wait_for_partner"
    except OSError:
        return False
