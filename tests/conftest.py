"""Shared fixtures: tiny seeded models trained in-test on small synthetic corpora."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from tests.helpers import PERIODIC, tiny_config

# PTB 22 gives RetryAfter.retry_after as a timedelta when this is set, and warns otherwise (and
# warnings are errors here). The service sets it too (cli/main.py).
os.environ.setdefault("PTB_TIMEDELTA", "1")


@pytest.fixture(autouse=True, scope="session")
def _small_thread_count():
    # Tiny models run faster on one thread, and tests then leave the other core to a second process.
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def periodic_corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "periodic.txt"
    path.write_text(PERIODIC * 150, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, periodic_corpus) -> Path:
    """A run directory holding a small LSTM that has learned the periodic corpus."""
    from trainer.train import Trainer

    tmp = tmp_path_factory.mktemp("trained")
    cfg = tiny_config(tmp, periodic_corpus, hidden=48, layers=2, max_steps=150, eval_every=75)
    Trainer.start(cfg).run()
    return Path(cfg.run_dir)


@pytest.fixture
def sqlite_db(tmp_path):
    """A migrated SQLite database of its own."""
    from db.session import Database

    database = Database(f"sqlite:///{tmp_path / 'rnnbot.db'}")
    database.upgrade()
    yield database
    database.close()
