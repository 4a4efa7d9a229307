"""Scheduler fixtures: a tiny model that writes `chapter:verse text` lines, the sandbox, databases."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest
from pydantic import SecretStr
from telegram import Bot

from sandbox import SandboxClient
from bot.settings import Settings
from bot.worker import GenerationWorker, ModelStore
from db import repositories as repo
from db.session import Database
from tests.db.conftest import database_url, postgres_admin  # noqa: F401  (fixtures: SQLite and PostgreSQL)
from tests.helpers import tiny_config
# The sandbox's server (its channel CHANNEL, and LOCKED_CHANNEL where the bot is not an admin: 403).
from tests.sandbox.conftest import CHANNEL, LOCKED_CHANNEL, server  # noqa: F401  (fixture)

ALICE = 1001  # the sandbox client's user, an admin here; her private chat has the same id
SUBJECTS = ["the lamb", "a king", "my son", "his servant", "the river", "our father"]
VERBS = ["shall see", "hath found", "went unto", "did bless", "will keep", "spake to"]
OBJECTS = ["the city.", "a great light.", "the hills.", "his people.", "the stone.", "every gate."]


@pytest.fixture(scope="session")
def verse_corpus(tmp_path_factory) -> Path:
    """600 made-up verses from 216 combinations: the model learns the format and mixes the parts."""
    rng = random.Random(5)
    lines = [f"{rng.randint(1, 30)}:{rng.randint(1, 40)} {rng.choice(SUBJECTS)} {rng.choice(VERBS)} "
             f"{rng.choice(OBJECTS)}" for _ in range(600)]
    path = tmp_path_factory.mktemp("verses") / "verses.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def verse_run(tmp_path_factory, verse_corpus) -> Path:
    """A run directory whose model writes mostly well-formed verse lines (a few seconds to train)."""
    from trainer.train import Trainer

    cfg = tiny_config(tmp_path_factory.mktemp("verse-run"), verse_corpus, hidden=64, layers=1, seq_len=64,
                      batch_size=16, max_steps=200, eval_every=200)
    Trainer.start(cfg).run()
    return Path(cfg.run_dir)


@pytest.fixture(scope="session")
def models(verse_run) -> ModelStore:
    return ModelStore({"verses": str(verse_run)}, "verses")


@pytest.fixture
async def worker(models):
    # Async, so it stops while the test's event loop still runs: requests a stopped buffer left
    # queued are then delivered to a live loop.
    generation = GenerationWorker(models, queue_size=256, max_batch=64, batch_wait_s=0.002)
    generation.start()
    yield generation
    await asyncio.to_thread(generation.stop)


@pytest.fixture
def any_db(database_url):  # noqa: F811  (SQLite and PostgreSQL, each a fresh database)
    database = Database(database_url)
    database.upgrade()
    yield database
    database.close()


@pytest.fixture
async def client(server):
    async with SandboxClient(server.url) as alice:
        await alice.send_text(None, "/start")  # so the bot may write to her (admin reports)
        yield alice


@pytest.fixture
async def bot(server):
    async with Bot(server.token, base_url=server.bot_api_base_url) as real_bot:
        yield real_bot


@pytest.fixture
def make_settings(tmp_path, verse_run):
    def build(**changes) -> Settings:
        values = dict(telegram_bot_token=SecretStr("unused:token"), admin_user_ids=frozenset({ALICE}),
                      database_url=f"sqlite:///{tmp_path / 'rnnbot.db'}", model_path=str(verse_run),
                      channel_id=CHANNEL, post_schedule="1s",
                      post_corpus="none", post_temperature=0.9, post_min_chars=10, post_max_chars=80,
                      post_candidates=8, post_buffer_size=3, post_misfire_grace_s=5.0, post_retry_window_s=10.0,
                      post_send_timeout_s=5.0)
        values.update(changes)
        return Settings(_env_file=None, **values)

    return build


def all_posts(database: Database) -> list:
    with database.transaction() as session:
        return repo.recent_posts(session, limit=10_000)[::-1]  # oldest slot first
